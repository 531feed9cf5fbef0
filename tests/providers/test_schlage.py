"""Schlage Home API v2 adapter against `responses` (payloads shaped as in VENDORS.md §4)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.utils import timezone

from providers.base import EventKind, Progress, ProviderError, Reason, WebhookVerificationError
from providers.models import Vendor
from providers.registry import get_provider
from tests import factories

API = "https://api.allegion.com/schlage-home"
DEVICE = "dev-8b1d"
TOKEN = "schlage-token-77aa"
PIN = "582913"
COMMAND = "cmd-3f2a"


@pytest.fixture(scope="module")
def schlage_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def lock(db, schlage_key):
    tenant = factories.TenantFactory()
    pem = schlage_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    account = factories.ProviderAccountFactory(
        tenant=tenant, vendor=Vendor.SCHLAGE, credentials={"token": TOKEN, "webhook_public_key": pem}
    )
    prop = factories.PropertyFactory(tenant=tenant, timezone="America/New_York")
    return factories.LockFactory(tenant=tenant, property=prop, provider_account=account, vendor_device_id=DEVICE)


@pytest.fixture
def provider(lock):
    return get_provider(lock.provider_account)


@pytest.fixture
def code(lock):
    starts = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    return factories.AccessCodeFactory(
        tenant=lock.tenant, lock=lock, name="Ana Costa", pin=PIN, starts_at=starts, ends_at=starts + timedelta(days=3)
    )


def access_code(ref: str, pin: str, name: str = "Cleaner") -> dict:
    return {
        "accessCodeId": ref,
        "name": name,
        "code": pin,
        "accessCodeLength": len(pin),
        "readOnly": False,
        "scheduleType": "Temporary",
        "scheduleDetails": {
            "startDateTime": "2026-12-01T15:00:00-05:00",
            "endDateTime": "2026-12-04T11:00:00-05:00",
            "schedules": [],
        },
    }


def mock_codes(*codes: dict) -> None:
    responses.get(f"{API}/devices/{DEVICE}/accesscodes", json=list(codes))


def command(state: str, *, ref: str | None = "ac-9", message: str | None = None) -> dict:
    error = None if message is None else {"statusCode": 500, "errorCode": 1, "errorMessage": message}
    return {
        "commandId": COMMAND,
        "deviceId": DEVICE,
        "state": state,
        "name": "AddAccessCode",
        "data": {"accessCodeId": ref, "friendlyName": "Ana Costa", "error": error},
    }


# --- codes


@responses.activate
def test_it_creates_a_code_and_answers_pending_with_the_command_id(provider, lock, code):
    mock_codes(access_code("ac-1", "111999"))
    responses.put(f"{API}/devices/{DEVICE}/accesscodes", status=202, json={"commandId": COMMAND})

    receipt = provider.create_code(lock, code)

    sent = json.loads(responses.calls[-1].request.body)
    assert sent == {
        "name": "Ana Costa",
        "code": PIN,
        "scheduleType": "Temporary",
        "scheduleDetails": {"startDateTime": "2026-12-01T15:00:00-05:00", "endDateTime": "2026-12-04T15:00:00-05:00"},
    }
    assert receipt.progress == Progress.PENDING
    assert receipt.vendor_ref == COMMAND
    assert PIN not in json.dumps(receipt.request_summary)
    assert responses.calls[-1].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_it_creates_an_ongoing_code_as_always(provider, lock, code):
    code.starts_at = code.ends_at = None
    mock_codes()
    responses.put(f"{API}/devices/{DEVICE}/accesscodes", status=202, json={"commandId": COMMAND})

    provider.create_code(lock, code)

    assert json.loads(responses.calls[-1].request.body)["scheduleType"] == "Always"


@responses.activate
def test_it_refuses_a_pin_whose_length_differs_from_the_locks_codes(provider, lock, code):
    mock_codes(access_code("ac-1", "1357"), access_code("ac-2", "2468"))

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.INVALID_PIN
    assert not caught.value.transient
    assert "4 digits" in caught.value.vendor_detail
    assert PIN not in caught.value.vendor_detail
    assert len(responses.calls) == 1  # read only: nothing was sent


@responses.activate
def test_it_updates_a_code_by_its_access_code_id(provider, lock, code):
    code.vendor_code_ref = "ac-9"
    mock_codes(access_code("ac-9", "1234", "Ana Costa"), access_code("ac-1", "111999"))
    responses.put(f"{API}/devices/{DEVICE}/accesscodes/ac-9", status=202, json={"commandId": COMMAND})

    receipt = provider.update_code(lock, code)

    assert receipt.vendor_ref == COMMAND
    assert receipt.vendor_code_ref == "ac-9"


@responses.activate
def test_it_deletes_a_code_by_its_access_code_id(provider, lock, code):
    code.vendor_code_ref = "ac-9"
    responses.delete(f"{API}/devices/{DEVICE}/accesscodes/ac-9", status=202, json={"commandId": COMMAND})

    receipt = provider.delete_code(lock, code)

    assert receipt.progress == Progress.PENDING
    assert receipt.vendor_ref == COMMAND


@responses.activate
def test_it_answers_done_when_a_delete_finds_nothing_on_the_lock(provider, lock, code):
    mock_codes(access_code("ac-1", "111999"))

    assert provider.delete_code(lock, code).progress == Progress.DONE


@responses.activate
def test_it_reads_codes_with_their_pins_and_windows(provider, lock):
    mock_codes(access_code("ac-1", "111999", "Cleaner"))

    (observed,) = provider.read_codes(lock)

    assert observed.vendor_code_ref == "ac-1"
    assert observed.pin == "111999"
    assert observed.name == "Cleaner"
    assert observed.starts_at == datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


@responses.activate
def test_it_lists_devices_with_schlage_rules(provider):
    responses.get(
        f"{API}/devices",
        json=[
            {"deviceId": DEVICE, "name": "Front", "model": "BE489WB", "batteryLevel": 80, "connectivityState": "Online"},
            {"deviceId": "dev-2", "name": "Back", "connectivityState": "Offline", "accessCodeLength": 6},
        ],
    )

    front, back = provider.list_devices()

    assert front.requirements["code_lengths"] == [4, 5, 6, 7, 8]
    assert front.requirements["max_active_codes"] == 100
    assert front.native_scheduling is True
    assert front.pin_readable is True
    assert front.online is True
    assert front.battery_level == pytest.approx(0.8)
    assert back.requirements["code_lengths"] == [6]
    assert back.online is False


# --- the sweeper's poll


@pytest.mark.parametrize(
    ("state", "message", "progress", "reason"),
    [
        ("Successful", None, Progress.DONE, ""),
        ("Pending", None, Progress.PENDING, ""),
        ("Failed", "Access code/code name are already in use", Progress.FAILED, Reason.DESYNC),
        ("Failed", "Access code ID not found on device", Progress.FAILED, Reason.DESYNC),
        ("Failed", "User not found in the device", Progress.FAILED, Reason.USER_NOT_FOUND),
        ("Failed", "Schedule parameters are not valid", Progress.FAILED, Reason.SCHEDULE_INVALID),
        ("Failed", "Unrecognized job state", Progress.FAILED, Reason.UNRECOGNIZED_JOB_STATE),
        ("Failed", "Command timed out", Progress.FAILED, Reason.TIMEOUT),
        ("Failed", "Nack", Progress.FAILED, Reason.NACK),
        ("Failed", "Unacknowledged by lock", Progress.FAILED, Reason.VENDOR_ERROR),
        ("Failed", "Something new", Progress.FAILED, Reason.VENDOR_ERROR),
    ],
)
@responses.activate
def test_it_reads_a_commands_outcome(provider, lock, code, state, message, progress, reason):
    cmd = factories.LockCommandFactory(tenant=lock.tenant, lock=lock, access_code=code, vendor_ref=COMMAND)
    responses.get(f"{API}/devices/{DEVICE}/commands/{COMMAND}", json=command(state, message=message))

    outcome = provider.command_status(lock, cmd)

    assert outcome.progress == progress
    assert outcome.reason == reason
    assert outcome.vendor_code_ref == "ac-9"
    if message:
        assert message in outcome.detail


# --- errors at the HTTP edge


@pytest.mark.parametrize(
    ("status", "reason", "transient"),
    [
        (400, Reason.INVALID_PIN, False),
        (401, Reason.AUTH_FAILED, False),
        (403, Reason.AUTH_FAILED, False),
        (404, Reason.NOT_FOUND_ON_DEVICE, False),
        (409, Reason.DUPLICATE_PIN, False),
        (422, Reason.INVALID_PIN, False),
        (423, Reason.BUSY, True),
        (429, Reason.RATE_LIMITED, True),
        (500, Reason.VENDOR_ERROR, True),
    ],
)
@responses.activate
def test_it_normalizes_http_errors_without_leaking_the_pin(provider, lock, code, status, reason, transient):
    mock_codes()
    responses.put(
        f"{API}/devices/{DEVICE}/accesscodes",
        status=status,
        json={"message": f"cannot add {PIN} with {TOKEN}"},
        headers={"Retry-After": "12"},
    )

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == reason
    assert caught.value.transient is transient
    assert PIN not in caught.value.vendor_detail and PIN not in str(caught.value)
    assert TOKEN not in caught.value.vendor_detail
    if status == 429:
        assert caught.value.retry_after == 12


@responses.activate
def test_it_maps_a_runbook_phrase_in_a_synchronous_error(provider, lock, code):
    mock_codes()
    responses.put(
        f"{API}/devices/{DEVICE}/accesscodes",
        status=400,
        json={"error": {"errorMessage": "Schedule parameters are not valid"}},
    )

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.SCHEDULE_INVALID


@responses.activate
def test_it_reports_a_timeout_as_transient(provider, lock, code):
    mock_codes()
    responses.put(f"{API}/devices/{DEVICE}/accesscodes", body=requests.exceptions.ConnectTimeout("slow"))

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.TIMEOUT
    assert caught.value.transient


@responses.activate
def test_it_reports_malformed_json_as_a_vendor_error(provider, lock, code):
    mock_codes()
    responses.put(f"{API}/devices/{DEVICE}/accesscodes", status=202, body="accepted!")

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.VENDOR_ERROR
    assert caught.value.transient


@responses.activate
def test_it_reports_an_acceptance_without_a_command_id_as_a_vendor_error(provider, lock, code):
    mock_codes()
    responses.put(f"{API}/devices/{DEVICE}/accesscodes", status=202, json={})

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.VENDOR_ERROR


# --- webhooks


def event_body(trigger: str, data: dict, *, event_id: str = "evt-1", time: datetime | None = None) -> bytes:
    return json.dumps(
        {
            "eventId": event_id,
            "trigger": trigger,
            "deviceId": DEVICE,
            "time": (time or timezone.now()).isoformat(),
            "eventType": "DeviceUpdate",
            "data": data,
            "version": "2.0",
        }
    ).encode()


def sign(body: bytes, key: rsa.RSAPrivateKey) -> dict:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    return {"WebHook-Signature": base64.b64encode(key.sign(body, pss, hashes.SHA256())).decode()}


def test_it_accepts_a_correctly_signed_event(provider, schlage_key):
    body = event_body("DeviceConnectivityStateChanged", {"connected": "true"})

    provider.verify_webhook(body, sign(body, schlage_key))


def test_it_rejects_a_signature_by_another_key(provider, other_key):
    body = event_body("DeviceConnectivityStateChanged", {"connected": "true"})

    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(body, sign(body, other_key))


def test_it_rejects_a_tampered_body(provider, schlage_key):
    headers = sign(event_body("DeviceConnectivityStateChanged", {"connected": "true"}), schlage_key)

    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(event_body("DeviceConnectivityStateChanged", {"connected": "false"}), headers)


def test_it_rejects_an_unsigned_event(provider):
    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(event_body("DeviceConnectivityStateChanged", {"connected": "true"}), {})


def test_it_rejects_a_stale_event(provider, schlage_key):
    body = event_body("DeviceConnectivityStateChanged", {"connected": "true"}, time=timezone.now() - timedelta(hours=2))

    with pytest.raises(WebhookVerificationError, match="window"):
        provider.verify_webhook(body, sign(body, schlage_key))


def test_it_gives_a_replayed_event_the_same_id(provider):
    body = event_body("DeviceConnectivityStateChanged", {"connected": "true"}, event_id="evt-42")

    assert provider.webhook_event_id(body, {}) == "evt-42"
    assert provider.webhook_event_id(body, {}) == provider.webhook_event_id(body, {})


@pytest.mark.parametrize(
    ("state", "message", "kind", "reason"),
    [
        ("Successful", None, EventKind.COMMAND_SUCCEEDED, ""),
        ("Failed", "Nack", EventKind.COMMAND_FAILED, Reason.NACK),
        ("Failed", "Access code/code name are already in use", EventKind.COMMAND_FAILED, Reason.DESYNC),
        ("Pending", None, EventKind.IGNORED, ""),
    ],
)
def test_it_parses_command_status_updates(provider, state, message, kind, reason):
    body = event_body("CommandStatusUpdated", command(state, message=message))

    (event,) = provider.parse_webhook(body, {})

    assert event.kind == kind
    assert event.reason == reason
    assert event.vendor_ref == COMMAND
    assert event.vendor_code_ref == "ac-9"
    assert event.vendor_device_id == DEVICE


@pytest.mark.parametrize(("connected", "kind"), [("true", EventKind.DEVICE_ONLINE), ("false", EventKind.DEVICE_OFFLINE)])
def test_it_reads_connectivity_from_the_string_flag(provider, connected, kind):
    (event,) = provider.parse_webhook(event_body("DeviceConnectivityStateChanged", {"connected": connected}), {})

    assert event.kind == kind


def test_it_reads_battery_when_an_event_carries_it(provider):
    body = event_body("DeviceLockStateChanged", {"lockState": "Locked", "batteryLevel": 15})

    lock_state, battery = provider.parse_webhook(body, {})

    assert lock_state.kind == EventKind.IGNORED
    assert battery.kind == EventKind.BATTERY
    assert battery.battery_level == pytest.approx(0.15)


@responses.activate
def test_it_sends_the_settings_forms_api_key_as_the_subscription_key(lock):
    lock.provider_account.credentials = {"token": TOKEN, "api_key": "sub-key-123"}
    responses.get(f"{API}/devices", json=[])

    get_provider(lock.provider_account).check_connection()

    sent = responses.calls[-1].request.headers
    assert sent["alle-subscription-key"] == "sub-key-123"
    assert sent["Authorization"] == f"Bearer {TOKEN}"
