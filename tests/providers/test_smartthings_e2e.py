"""A SmartThings account driven end to end: booking → setCode on a free slot → a signed codeChanged event
through the webhook URL → the code's status. Only the vendor's HTTP is faked (`responses`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse

from locks.codes import code_mark_guest_notified
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    Verification,
)
from portal.services import booking_create
from providers.models import Vendor, WebhookEvent
from tests import factories
from tests.providers.test_smartthings import device_event, lifecycle_event, public_pem, signed_headers

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
API = "https://api.smartthings.com/v1"
DEVICE = "6f5ea629-4c05-4a90-a244-cc129b0a80c3"


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def vendor():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def lock(db, app_key):
    tenant = factories.TenantFactory(slug="st-e2e")
    account = factories.ProviderAccountFactory(
        tenant=tenant, vendor=Vendor.SMARTTHINGS, credentials={"token": "st-token", "public_key": public_pem(app_key)}
    )
    prop = factories.PropertyFactory(tenant=tenant, name="Dune Cottage", timezone="UTC")
    return factories.LockFactory(
        tenant=tenant, property=prop, provider_account=account, vendor_device_id=DEVICE, name="Front",
        native_scheduling=False, pin_readable=False,
        requirements={"code_lengths": [6], "max_active_codes": 8, "constraints": []},
    )


def lock_status(slots: dict[str, str]) -> dict:
    return {"components": {"main": {"lockCodes": {"lockCodes": {"value": json.dumps(slots)}, "maxCodes": {"value": 8}}}}}


def set_codes(vendor) -> list[list]:
    """The arguments of every setCode the adapter sent, in order."""
    return [
        json.loads(call.request.body)["commands"][0]["arguments"]
        for call in vendor.calls
        if call.request.method == "POST" and json.loads(call.request.body)["commands"][0]["command"] == "setCode"
    ]


def book_guest_now(lock, django_capture_on_commit_callbacks):
    """A booking starting within the hour: its code is due at once and dispatched on commit."""
    with django_capture_on_commit_callbacks(execute=True):
        booking = booking_create(
            tenant=lock.tenant, property=lock.property, guest_name="Ana Costa",
            check_in=T0 + timedelta(minutes=45), check_out=T0 + timedelta(days=3), now=T0,
        )
    return AccessCode.objects.get(booking=booking, lock=lock)


def deliver(client, lock, app_key, body: bytes, django_capture_on_commit_callbacks):
    url = reverse("webhooks:receive", args=["smartthings", lock.provider_account.uuid])
    headers = signed_headers(body, app_key, path=url)
    del headers["X-Lockstep-Request-Path"], headers["Content-Type"]  # the intake view adds the path itself
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url, data=body, content_type="application/json", headers=headers)


def code_changed(value: str, event_id: str) -> bytes:
    return json.dumps(lifecycle_event(device_event(event_id, "lockCodes", "codeChanged", value))).encode()


def test_it_sets_a_code_in_a_free_slot_and_confirms_it_from_the_signed_event(
    client, lock, app_key, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(f"{API}/devices/{DEVICE}/status", json=lock_status({"1": "Cleaner"}))
    vendor.post(f"{API}/devices/{DEVICE}/commands", json={"results": [{"id": "r-1", "status": "ACCEPTED"}]})

    code = book_guest_now(lock, django_capture_on_commit_callbacks)

    code.refresh_from_db()
    command = LockCommand.objects.get(access_code=code, action="create")
    assert set_codes(vendor) == [[2, code.pin, code.name]]
    assert code.status == CodeStatus.SETTING
    assert code.vendor_code_ref == "2"
    assert command.state == CommandState.SENT
    assert code.pin not in json.dumps(command.request_summary)

    clock.shift(timedelta(seconds=20))
    response = deliver(client, lock, app_key, code_changed("2 set", "ev-2-set"), django_capture_on_commit_callbacks)

    assert response.status_code == 200
    code.refresh_from_db()
    command.refresh_from_db()
    assert code.status == CodeStatus.SET
    assert code.verification == Verification.VENDOR_ACK
    assert command.state == CommandState.SUCCEEDED
    event = WebhookEvent.objects.get(provider_account=lock.provider_account)
    assert event.vendor_event_id == "ev-2-set"
    assert event.processed_at is not None
    assert event.matched_code_id == code.pk

    # The vendor delivers it again: stored once, nothing changes, nothing is sent.
    again = deliver(client, lock, app_key, code_changed("2 set", "ev-2-set"), django_capture_on_commit_callbacks)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert WebhookEvent.objects.filter(provider_account=lock.provider_account).count() == 1
    assert len(set_codes(vendor)) == 1


def test_it_rejects_a_forged_event_at_the_webhook_url(
    client, lock, clock, vendor, django_capture_on_commit_callbacks
):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = deliver(client, lock, forger, code_changed("2 set", "ev-forged"), django_capture_on_commit_callbacks)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_it_names_the_clashing_slot_and_sends_a_new_pin_when_the_guest_was_not_told(
    client, lock, app_key, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(f"{API}/devices/{DEVICE}/status", json=lock_status({"1": "Cleaner"}))
    vendor.post(f"{API}/devices/{DEVICE}/commands", json={"results": [{"id": "r-1", "status": "ACCEPTED"}]})
    code = book_guest_now(lock, django_capture_on_commit_callbacks)
    clashing_pin = code.pin

    clock.shift(timedelta(seconds=30))
    deliver(client, lock, app_key, code_changed("1 failed", "ev-1-failed"), django_capture_on_commit_callbacks)

    code.refresh_from_db()
    issue = code.issues.get(kind=IssueKind.DUPLICATE_PIN)
    assert issue.status == IssueStatus.OPEN
    assert issue.data["clash_code_ref"] == "1"
    assert "slot 1" in issue.detail
    first, second = set_codes(vendor)
    assert first == [2, clashing_pin, code.name]
    assert second[0] == 2 and second[1] != clashing_pin  # never the clashing PIN again
    assert code.pin == second[1]
    assert LockCommand.objects.get(access_code=code, action="create", state=CommandState.FAILED).reason == "duplicate_pin"


def test_it_fails_the_code_as_duplicate_without_resending_when_the_guest_has_the_pin(
    client, lock, app_key, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(f"{API}/devices/{DEVICE}/status", json=lock_status({"1": "Cleaner"}))
    vendor.post(f"{API}/devices/{DEVICE}/commands", json={"results": [{"id": "r-1", "status": "ACCEPTED"}]})
    code = book_guest_now(lock, django_capture_on_commit_callbacks)
    code_mark_guest_notified(code=code, actor=None, now=T0)

    clock.shift(timedelta(seconds=30))
    deliver(client, lock, app_key, code_changed("1 failed", "ev-1-failed"), django_capture_on_commit_callbacks)

    code.refresh_from_db()
    assert code.status == CodeStatus.FAILED
    assert code.last_reason == "duplicate_pin"
    issue = code.issues.get(kind=IssueKind.DUPLICATE_PIN, status=IssueStatus.OPEN)
    assert issue.data["clash_code_ref"] == "1"
    assert "slot 1" in issue.detail
    assert len(set_codes(vendor)) == 1  # no blind resend


def test_it_retries_a_refusal_of_its_own_slot_as_a_nack_not_a_duplicate(
    client, lock, app_key, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(f"{API}/devices/{DEVICE}/status", json=lock_status({"1": "Cleaner"}))
    vendor.post(f"{API}/devices/{DEVICE}/commands", json={"results": [{"id": "r-1", "status": "ACCEPTED"}]})
    code = book_guest_now(lock, django_capture_on_commit_callbacks)
    pin = code.pin

    clock.shift(timedelta(seconds=30))
    deliver(client, lock, app_key, code_changed("2 failed", "ev-2-failed"), django_capture_on_commit_callbacks)

    code.refresh_from_db()
    failed = LockCommand.objects.get(access_code=code, state=CommandState.FAILED)
    retry = LockCommand.objects.get(access_code=code, state=CommandState.QUEUED)
    assert failed.reason == "nack"
    assert retry.attempt == 2 and retry.not_before > T0 + timedelta(seconds=30)
    assert code.status == CodeStatus.SETTING and code.pin == pin
    assert not code.issues.filter(kind=IssueKind.DUPLICATE_PIN).exists()
    assert len(set_codes(vendor)) == 1  # the retry waits for its backoff


# --- deliveries in the subscription shape and the empty slot map (issue "Truth under fire" 12a, 12e)


def single_event(event_id: str, capability: str, attribute: str, value) -> bytes:
    """The subscription shape: one `event` object, no lifecycle envelope."""
    return json.dumps({"event": device_event(event_id, capability, attribute, value)}).encode()


def smartapp_event(event_id: str, capability: str, attribute: str, value) -> bytes:
    """The SmartApp lifecycle EVENT shape, as the SmartApp SDK posts it."""
    return json.dumps(lifecycle_event(device_event(event_id, capability, attribute, value))).encode()


@pytest.mark.parametrize("shape", [single_event, smartapp_event], ids=["single-event", "lifecycle-event"])
def test_it_confirms_a_code_from_either_delivery_shape(
    client, lock, app_key, clock, vendor, django_capture_on_commit_callbacks, shape
):
    vendor.get(f"{API}/devices/{DEVICE}/status", json=lock_status({"1": "Cleaner"}))
    vendor.post(f"{API}/devices/{DEVICE}/commands", json={"results": [{"id": "r-1", "status": "ACCEPTED"}]})
    code = book_guest_now(lock, django_capture_on_commit_callbacks)

    clock.shift(timedelta(seconds=20))
    response = deliver(client, lock, app_key, shape("ev-2", "lockCodes", "codeChanged", "2 set"),
                       django_capture_on_commit_callbacks)

    assert response.status_code == 200
    code.refresh_from_db()
    assert code.status == CodeStatus.SET
    event = WebhookEvent.objects.get(provider_account=lock.provider_account)
    assert event.vendor_event_id == "ev-2"
    assert event.result != "no events"
    lock.provider_account.refresh_from_db()
    assert lock.provider_account.unparsed_deliveries == 0


def test_it_fails_our_code_from_a_subscription_shaped_one_failed(
    client, lock, app_key, clock, vendor, django_capture_on_commit_callbacks
):
    vendor.get(f"{API}/devices/{DEVICE}/status", json=lock_status({"1": "Cleaner"}))
    vendor.post(f"{API}/devices/{DEVICE}/commands", json={"results": [{"id": "r-1", "status": "ACCEPTED"}]})
    code = book_guest_now(lock, django_capture_on_commit_callbacks)
    code_mark_guest_notified(code=code, actor=None, now=T0)

    clock.shift(timedelta(seconds=30))
    deliver(client, lock, app_key, single_event("ev-1-failed", "lockCodes", "codeChanged", "1 failed"),
            django_capture_on_commit_callbacks)

    code.refresh_from_db()
    assert code.status == CodeStatus.FAILED
    assert code.last_reason == "duplicate_pin"


def test_an_emptied_slot_map_at_the_start_of_a_reload_asks_for_no_reconciliation(
    client, lock, app_key, clock, vendor, django_capture_on_commit_callbacks
):
    response = deliver(client, lock, app_key, smartapp_event("ev-empty", "lockCodes", "lockCodes", "{}"),
                       django_capture_on_commit_callbacks)

    assert response.status_code == 200
    lock.refresh_from_db()
    assert lock.reconcile_requested is False
    assert not lock.commands.exists()
    assert WebhookEvent.objects.get(provider_account=lock.provider_account).processed_at is not None
