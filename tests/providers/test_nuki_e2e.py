"""A Nuki account driven end to end through the engine: a booking's keypad code on the lock, a PIN change
that Nuki refuses with 423 while an operation runs on the auth, and the retry that carries the latest PIN
once the operation ends. Only Nuki's HTTP is faked: a small model of the cloud's auth list behind
`responses` callbacks (an auth with `operationId` set refuses changes with 423; a 204 starts an
operation that the test ends by hand, as the lock would)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
import time_machine

from locks.actions import code_regenerate_pin
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    Verification,
)
from locks.sweep import sweep
from locks.tick import tick
from portal.services import booking_create, booking_update
from providers.models import Vendor
from providers.nuki import REQUIREMENTS
from tests import factories

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:9"
SMARTLOCK = "17"
AUTHS = f"{BASE}/smartlock/{SMARTLOCK}/auth"
AUTH_ID = "6512a3f1c0de5e0a17b1c9d2"
BUSY_BODY = {"stackTrace": [], "suppressedExceptions": []}


@dataclass
class NukiCloud:
    """The mocked Nuki Web API's view of one smart lock's keypad auths."""

    auths: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: int = 0
    mock: responses.RequestsMock | None = None

    def _start_operation(self, auth: dict[str, Any]) -> None:
        self.operations += 1
        auth["operationId"] = f"op-{self.operations}"

    def start_operation(self) -> None:
        """Something else (the Nuki app, a sync) starts changing our auth."""
        self._start_operation(self.auths[AUTH_ID])

    def finish_operations(self) -> None:
        """The lock has applied everything: the list no longer shows an operation."""
        for auth in self.auths.values():
            auth["operationId"] = None

    def list_auths(self, request) -> tuple[int, dict, str]:
        return 200, {}, json.dumps(list(self.auths.values()))

    def create_auth(self, request) -> tuple[int, dict, str]:
        body = json.loads(request.body)
        auth = {"id": AUTH_ID, "smartlockId": int(SMARTLOCK), "authId": 3, "enabled": True, **body}
        self.auths[AUTH_ID] = auth
        self._start_operation(auth)
        return 204, {}, ""

    def update_auth(self, request) -> tuple[int, dict, str]:
        auth = self.auths.get(request.url.rsplit("/", 1)[-1])
        if auth is None:
            return 404, {}, json.dumps({"detailMessage": "auth not found", **BUSY_BODY})
        if auth.get("operationId"):
            return 423, {}, json.dumps(BUSY_BODY)
        auth.update(json.loads(request.body))
        self._start_operation(auth)
        return 204, {}, ""


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def cloud():
    state = NukiCloud()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, AUTHS, callback=state.list_auths)
        mock.add_callback(responses.PUT, AUTHS, callback=state.create_auth)
        mock.add_callback(responses.POST, f"{AUTHS}/{AUTH_ID}", callback=state.update_auth)
        mock.post(f"{BASE}/smartlock/{SMARTLOCK}/sync", status=204)
        state.mock = mock
        yield state


@pytest.fixture
def lock(db):
    tenant = factories.TenantFactory(slug="nuki-e2e")
    account = factories.ProviderAccountFactory(
        tenant=tenant, vendor=Vendor.NUKI, credentials={"api_token": "nuki-e2e-token", "base_url": BASE}
    )
    prop = factories.PropertyFactory(tenant=tenant, name="Alpine Studio", timezone="Europe/Vienna")
    return factories.LockFactory(
        tenant=tenant, property=prop, provider_account=account, vendor_device_id=SMARTLOCK, name="Keypad",
        native_scheduling=True, pin_readable=True, requirements=dict(REQUIREMENTS),
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def updates_sent(cloud: NukiCloud) -> list[tuple[int, str]]:
    """(HTTP status, PIN in the body) of every auth update the adapter sent, in order."""
    return [
        (call.response.status_code, str(json.loads(call.request.body)["code"]))
        for call in cloud.mock.calls  # type: ignore[union-attr]
        if call.request.method == "POST" and call.request.url == f"{AUTHS}/{AUTH_ID}"
    ]


def code_on_the_lock(lock, cloud, clock, django_capture_on_commit_callbacks) -> AccessCode:
    """A booking whose window starts at T0+15: created on the lock, confirmed from the auth list by the
    sweeper, started by the tick. Leaves the clock at T0+16."""
    with django_capture_on_commit_callbacks(execute=True):
        booking = booking_create(
            tenant=lock.tenant, property=lock.property, guest_name="Lena Huber",
            check_in=at(45), check_out=at(3 * 24 * 60), now=T0,
        )
    code = AccessCode.objects.get(booking=booking, lock=lock)
    clock.move_to(at(1))
    cloud.finish_operations()
    clock.move_to(at(6))
    with django_capture_on_commit_callbacks(execute=True):
        sweep(now=at(6))
    clock.move_to(at(16))
    with django_capture_on_commit_callbacks(execute=True):
        tick(now=at(16))
    code.refresh_from_db()
    assert code.status == CodeStatus.SET and code.vendor_code_ref == AUTH_ID
    assert str(cloud.auths[AUTH_ID]["code"]) == code.pin
    return code


def regenerate(code: AccessCode, now: datetime, clock, django_capture_on_commit_callbacks) -> AccessCode:
    clock.move_to(now)
    with django_capture_on_commit_callbacks(execute=True):
        return code_regenerate_pin(code=code, actor=None, now=now)


def queued_update(code: AccessCode) -> LockCommand:
    (command,) = LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED)
    assert command.action == CommandAction.UPDATE
    return command


def run(step, now: datetime, clock, django_capture_on_commit_callbacks) -> None:
    clock.move_to(now)
    with django_capture_on_commit_callbacks(execute=True):
        step(now=now)


def test_it_retries_a_423_update_after_the_operation_ends_with_the_latest_pin(
    lock, cloud, clock, django_capture_on_commit_callbacks
):
    code = code_on_the_lock(lock, cloud, clock, django_capture_on_commit_callbacks)
    cloud.start_operation()

    first_pin = regenerate(code, at(20), clock, django_capture_on_commit_callbacks).pin

    refused = LockCommand.objects.get(access_code=code, action=CommandAction.UPDATE, state=CommandState.FAILED)
    assert refused.reason == "busy"
    retry = queued_update(code)
    assert (retry.attempt, retry.not_before) == (2, at(21))  # backoff table: 1 min after the first failure
    code.refresh_from_db()
    assert code.status == CodeStatus.SETTING and code.pin == first_pin and code.last_reason == "busy"
    assert code.issues.get(kind=IssueKind.BUSY).status == IssueStatus.OPEN
    assert updates_sent(cloud) == [(423, first_pin)]

    # A second PIN while the retry waits: it rides the same queued update, which keeps its backoff.
    latest_pin = regenerate(code, at(20.5), clock, django_capture_on_commit_callbacks).pin
    assert latest_pin != first_pin
    assert queued_update(code).pk == retry.pk
    assert queued_update(code).not_before == at(21)
    assert updates_sent(cloud) == [(423, first_pin)]

    cloud.finish_operations()  # the running operation ends before the retry is due
    run(tick, at(21), clock, django_capture_on_commit_callbacks)

    assert updates_sent(cloud) == [(423, first_pin), (204, latest_pin)]  # one update, the latest PIN
    sent = LockCommand.objects.get(pk=retry.pk)
    assert sent.state == CommandState.SENT
    assert latest_pin not in json.dumps(sent.request_summary)
    assert cloud.auths[AUTH_ID]["operationId"]  # Nuki applies it: pending until the list says done

    run(sweep, at(24), clock, django_capture_on_commit_callbacks)  # not stale yet: no poll, still sent
    assert LockCommand.objects.get(pk=retry.pk).state == CommandState.SENT

    cloud.finish_operations()
    run(sweep, at(27), clock, django_capture_on_commit_callbacks)

    sent.refresh_from_db()
    code.refresh_from_db()
    assert sent.state == CommandState.SUCCEEDED
    assert str(cloud.auths[AUTH_ID]["code"]) == latest_pin
    assert code.status == CodeStatus.SET and code.pin == latest_pin
    assert code.verification == Verification.VENDOR_ACK and code.last_reason == ""
    assert not code.issues.filter(kind=IssueKind.BUSY, status=IssueStatus.OPEN).exists()
    assert not LockCommand.objects.filter(lock=lock, state__in=[CommandState.QUEUED, CommandState.SENT]).exists()
    assert len(updates_sent(cloud)) == 2


def test_it_keeps_backing_off_while_the_operation_outlasts_a_retry_and_loses_no_change(
    lock, cloud, clock, django_capture_on_commit_callbacks
):
    code = code_on_the_lock(lock, cloud, clock, django_capture_on_commit_callbacks)
    cloud.start_operation()
    first_pin = regenerate(code, at(20), clock, django_capture_on_commit_callbacks).pin

    # The stay grows by a night while the PIN change waits: dates and PIN go out together later.
    clock.move_to(at(20.5))
    with django_capture_on_commit_callbacks(execute=True):
        booking_update(booking=code.booking, check_out=at(4 * 24 * 60), now=at(20.5))
    latest_pin = regenerate(code, at(20.75), clock, django_capture_on_commit_callbacks).pin

    run(tick, at(21), clock, django_capture_on_commit_callbacks)  # still running: 423 again

    assert updates_sent(cloud) == [(423, first_pin), (423, latest_pin)]
    retry = queued_update(code)
    assert (retry.attempt, retry.not_before) == (3, at(23))  # 2 min after the second failure
    assert code.issues.get(kind=IssueKind.BUSY, status=IssueStatus.OPEN).occurrences == 2

    run(tick, at(22), clock, django_capture_on_commit_callbacks)  # backoff not over: nothing sent
    assert len(updates_sent(cloud)) == 2

    cloud.finish_operations()
    run(tick, at(23), clock, django_capture_on_commit_callbacks)
    cloud.finish_operations()
    run(sweep, at(29), clock, django_capture_on_commit_callbacks)

    assert updates_sent(cloud) == [(423, first_pin), (423, latest_pin), (204, latest_pin)]
    code.refresh_from_db()
    auth = cloud.auths[AUTH_ID]
    assert str(auth["code"]) == latest_pin == code.pin
    assert auth["allowedUntilDate"] == (at(4 * 24 * 60 + 30)).isoformat().replace("+00:00", "Z")
    assert code.status == CodeStatus.SET
    assert LockCommand.objects.get(pk=retry.pk).state == CommandState.SUCCEEDED
    assert not code.issues.filter(status=IssueStatus.OPEN).exists()


def test_it_confirms_an_update_by_the_pin_it_sent_when_a_newer_pin_waits_behind_it(
    lock, cloud, clock, django_capture_on_commit_callbacks
):
    code = code_on_the_lock(lock, cloud, clock, django_capture_on_commit_callbacks)
    first_pin = regenerate(code, at(20), clock, django_capture_on_commit_callbacks).pin
    first = LockCommand.objects.get(access_code=code, action=CommandAction.UPDATE, state=CommandState.SENT)
    latest_pin = regenerate(code, at(21), clock, django_capture_on_commit_callbacks).pin  # a quick second edit
    assert updates_sent(cloud) == [(204, first_pin)]

    cloud.finish_operations()  # the lock applied what the first update sent
    run(sweep, at(26), clock, django_capture_on_commit_callbacks)

    first.refresh_from_db()
    assert first.state == CommandState.SUCCEEDED  # not a NACK: the lock holds exactly what it sent
    assert updates_sent(cloud) == [(204, first_pin), (204, latest_pin)]
    second = LockCommand.objects.get(access_code=code, action=CommandAction.UPDATE, state=CommandState.SENT)
    assert second.attempt == 1  # no retry spent
    code.refresh_from_db()
    assert code.status == CodeStatus.SETTING  # the latest PIN is not on the lock yet

    cloud.finish_operations()
    run(sweep, at(32), clock, django_capture_on_commit_callbacks)

    code.refresh_from_db()
    assert LockCommand.objects.get(pk=second.pk).state == CommandState.SUCCEEDED
    assert code.status == CodeStatus.SET and str(cloud.auths[AUTH_ID]["code"]) == latest_pin == code.pin
    assert not code.issues.filter(kind=IssueKind.NACK).exists()


def test_it_confirms_a_create_by_the_pin_it_sent_when_the_pin_changed_while_it_ran(
    lock, cloud, clock, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        booking = booking_create(
            tenant=lock.tenant, property=lock.property, guest_name="Lena Huber",
            check_in=at(45), check_out=at(3 * 24 * 60), now=T0,
        )
    code = AccessCode.objects.get(booking=booking, lock=lock)
    create = LockCommand.objects.get(access_code=code, action=CommandAction.CREATE, state=CommandState.SENT)
    sent_pin = str(cloud.auths[AUTH_ID]["code"])
    latest_pin = regenerate(code, at(1), clock, django_capture_on_commit_callbacks).pin
    assert latest_pin != sent_pin

    cloud.finish_operations()
    run(sweep, at(6), clock, django_capture_on_commit_callbacks)

    assert LockCommand.objects.get(pk=create.pk).state == CommandState.SUCCEEDED
    assert updates_sent(cloud) == [(204, latest_pin)]  # the new PIN goes to the auth the create made
    cloud.finish_operations()
    run(sweep, at(12), clock, django_capture_on_commit_callbacks)
    code.refresh_from_db()
    assert code.vendor_code_ref == AUTH_ID and str(cloud.auths[AUTH_ID]["code"]) == code.pin == latest_pin
    assert len(cloud.auths) == 1


def creates_sent(cloud: NukiCloud) -> int:
    return sum(1 for call in cloud.mock.calls if call.request.method == "PUT")  # type: ignore[union-attr]


def test_it_adopts_an_auth_whose_create_answer_was_lost_instead_of_putting_a_second_one(
    lock, cloud, clock, django_capture_on_commit_callbacks, monkeypatch
):
    from locks import dispatch

    class WorkerDied(Exception):
        pass

    def die(**kwargs: Any) -> None:
        raise WorkerDied

    with monkeypatch.context() as patch:
        patch.setattr(dispatch, "command_acknowledge", die)  # killed right after Nuki's 204
        with pytest.raises(WorkerDied), django_capture_on_commit_callbacks(execute=True):
            booking = booking_create(
                tenant=lock.tenant, property=lock.property, guest_name="Lena Huber",
                check_in=at(45), check_out=at(3 * 24 * 60), now=T0,
            )
    code = AccessCode.objects.get(booking=booking, lock=lock)
    first = LockCommand.objects.get(access_code=code)
    # The lock is slow (offline): the operation outlasts the hard limit.
    run(sweep, at(6), clock, django_capture_on_commit_callbacks)
    run(sweep, at(31), clock, django_capture_on_commit_callbacks)
    assert LockCommand.objects.get(pk=first.pk).state == CommandState.TIMED_OUT

    run(tick, at(32), clock, django_capture_on_commit_callbacks)

    assert creates_sent(cloud) == 1  # asked the lock first: the auth is there, being applied
    retry = LockCommand.objects.get(access_code=code, attempt=2)
    assert retry.state == CommandState.SENT
    cloud.finish_operations()
    run(sweep, at(38), clock, django_capture_on_commit_callbacks)

    code.refresh_from_db()
    assert LockCommand.objects.get(pk=retry.pk).state == CommandState.SUCCEEDED
    assert code.status == CodeStatus.SET and code.vendor_code_ref == AUTH_ID
    assert creates_sent(cloud) == 1 and len(cloud.auths) == 1
