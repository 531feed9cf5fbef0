"""A Schlage account driven end to end with no webhook at all: the create is accepted with a commandId,
and the sweeper, once the command is 5 minutes old, reads its outcome from GET command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
import time_machine

from locks.models import (
    AccessCode,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    Verification,
)
from locks.sweep import sweep
from portal.services import booking_create
from providers.models import Vendor
from tests import factories

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
API = "https://api.allegion.com/schlage-home"
DEVICE = "dev-8b1d"
COMMAND = "cmd-3f2a"
COMMAND_URL = f"{API}/devices/{DEVICE}/commands/{COMMAND}"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def vendor():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API}/devices/{DEVICE}/accesscodes", json=[])
        mock.put(f"{API}/devices/{DEVICE}/accesscodes", status=202, json={"commandId": COMMAND})
        yield mock


@pytest.fixture
def lock(db):
    tenant = factories.TenantFactory(slug="schlage-e2e")
    account = factories.ProviderAccountFactory(tenant=tenant, vendor=Vendor.SCHLAGE, credentials={"token": "t"})
    prop = factories.PropertyFactory(tenant=tenant, name="Harbor Loft", timezone="America/New_York")
    return factories.LockFactory(
        tenant=tenant, property=prop, provider_account=account, vendor_device_id=DEVICE, name="Encode",
        native_scheduling=True, pin_readable=True,
        requirements={"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 100, "constraints": []},
    )


def book_and_send(lock, django_capture_on_commit_callbacks) -> AccessCode:
    """A stay two days out: inside the 72 h preload lead, so its create goes out on commit."""
    with django_capture_on_commit_callbacks(execute=True):
        booking = booking_create(
            tenant=lock.tenant, property=lock.property, guest_name="Ben Okafor",
            check_in=T0 + timedelta(days=2), check_out=T0 + timedelta(days=5), now=T0,
        )
    return AccessCode.objects.get(booking=booking, lock=lock)


def command_answer(state: str, *, ref: str | None, message: str | None = None) -> dict:
    error = None if message is None else {"statusCode": 400, "errorCode": 9, "errorMessage": message}
    return {
        "commandId": COMMAND,
        "deviceId": DEVICE,
        "state": state,
        "name": "AddAccessCode",
        "data": {"accessCodeId": ref, "friendlyName": "Ben Okafor", "error": error},
    }


def polls(vendor) -> int:
    return sum(1 for call in vendor.calls if call.request.url == COMMAND_URL)


def test_the_sweeper_completes_a_command_that_never_got_a_webhook(
    lock, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(COMMAND_URL, json=command_answer("Successful", ref="ac-77"))
    code = book_and_send(lock, django_capture_on_commit_callbacks)
    command = LockCommand.objects.get(access_code=code, action="create")
    sent = json.loads(next(c.request.body for c in vendor.calls if c.request.method == "PUT"))
    assert command.state == CommandState.SENT
    assert command.vendor_ref == COMMAND
    assert sent["code"] == code.pin and sent["scheduleType"] == "Temporary"

    clock.shift(timedelta(minutes=4))
    sweep(now=T0 + timedelta(minutes=4))
    assert polls(vendor) == 0  # not stale yet: the webhook may still come
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SENT

    clock.shift(timedelta(minutes=2))
    report = sweep(now=T0 + timedelta(minutes=6))

    assert polls(vendor) == 1
    assert report.completed == 1
    command.refresh_from_db()
    code.refresh_from_db()
    assert command.state == CommandState.SUCCEEDED
    assert code.vendor_code_ref == "ac-77"
    # Preloaded ahead of its window on a natively scheduling lock: on the device, not yet active.
    assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device
    assert code.verification == Verification.VENDOR_ACK


def test_the_sweeper_turns_a_split_brain_failure_into_a_desync_issue(
    lock, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(
        COMMAND_URL, json=command_answer("Failed", ref=None, message="Access code/code name are already in use")
    )
    code = book_and_send(lock, django_capture_on_commit_callbacks)

    clock.shift(timedelta(minutes=6))
    sweep(now=T0 + timedelta(minutes=6))

    code.refresh_from_db()
    command = LockCommand.objects.get(access_code=code, action="create")
    assert command.state == CommandState.FAILED
    assert command.reason == "desync"
    assert "already in use" in command.vendor_detail
    assert code.status == CodeStatus.FAILED
    assert code.issues.get(kind=IssueKind.DESYNC).status == IssueStatus.OPEN


def test_the_sweeper_leaves_a_pending_command_in_flight_until_the_hard_limit(
    lock, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(COMMAND_URL, json=command_answer("Pending", ref=None))
    code = book_and_send(lock, django_capture_on_commit_callbacks)
    command = LockCommand.objects.get(access_code=code, action="create")

    sweep(now=T0 + timedelta(minutes=10))
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SENT

    sweep(now=T0 + timedelta(minutes=31))
    command.refresh_from_db()
    assert command.state == CommandState.TIMED_OUT
    assert polls(vendor) == 2


@pytest.mark.parametrize("state", ["Nack", "NACK"])
def test_the_sweeper_fails_a_nacked_command_at_once_and_retries_it(
    lock, clock, vendor, django_capture_on_commit_callbacks, state
):
    # The lock never acknowledged: a state of its own, with no error message (operator runbook, DESIGN §4).
    vendor.get(COMMAND_URL, json=command_answer(state, ref=None))
    code = book_and_send(lock, django_capture_on_commit_callbacks)

    clock.shift(timedelta(minutes=6))
    sweep(now=T0 + timedelta(minutes=6))

    command = LockCommand.objects.get(access_code=code, action="create", attempt=1)
    assert command.state == CommandState.FAILED
    assert command.reason == "nack"
    retry = LockCommand.objects.get(access_code=code, state=CommandState.QUEUED)
    assert retry.attempt == 2  # transient: retried with backoff, not left pending for 30 minutes
