"""SmartThings adapter against `responses` (payloads shaped as in VENDORS.md §2)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from email.utils import format_datetime

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

API = "https://api.smartthings.com/v1"
DEVICE = "6f5ea629-4c05-4a90-a244-cc129b0a80c3"
TOKEN = "st-token-9f8e7d6c5b4a"
PIN = "482913"
WEBHOOK_PATH = "/webhooks/smartthings/0f7c2a8e-acct/"


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture
def lock(db, app_key):
    tenant = factories.TenantFactory()
    account = factories.ProviderAccountFactory(
        tenant=tenant,
        vendor=Vendor.SMARTTHINGS,
        credentials={"token": TOKEN, "public_key": public_pem(app_key)},
    )
    return factories.LockFactory(
        tenant=tenant, provider_account=account, vendor_device_id=DEVICE, requirements={"code_lengths": [6]}
    )


@pytest.fixture
def provider(lock):
    return get_provider(lock.provider_account)


@pytest.fixture
def code(lock):
    return factories.AccessCodeFactory(tenant=lock.tenant, lock=lock, name="Ana Costa", pin=PIN)


def status_body(slots: dict[str, str], *, max_codes: int | None = 8, extra: dict | None = None) -> dict:
    lock_codes: dict = {"lockCodes": {"value": json.dumps(slots), "timestamp": "2026-11-22T05:00:00Z"}}
    if max_codes is not None:
        lock_codes["maxCodes"] = {"value": max_codes}
    lock_codes.update(extra or {})
    return {"components": {"main": {"lockCodes": lock_codes}}}


def mock_status(slots: dict[str, str], **kwargs) -> None:
    responses.get(f"{API}/devices/{DEVICE}/status", json=status_body(slots, **kwargs))


def mock_command(status: str = "ACCEPTED") -> responses.BaseResponse:
    return responses.post(
        f"{API}/devices/{DEVICE}/commands", json={"results": [{"id": "c0ffee00-1", "status": status}]}
    )


def sent_command(call_index: int = -1) -> dict:
    return json.loads(responses.calls[call_index].request.body)["commands"][0]


# --- codes


@responses.activate
def test_it_sets_a_new_code_in_the_lowest_free_slot(provider, lock, code):
    mock_status({"0": "Master", "1": "Cleaner", "3": "Owner"})
    mock_command("ACCEPTED")

    receipt = provider.create_code(lock, code)

    assert sent_command() == {
        "component": "main",
        "capability": "lockCodes",
        "command": "setCode",
        "arguments": [2, PIN, "Ana Costa"],
    }
    assert receipt.progress == Progress.PENDING
    assert receipt.vendor_code_ref == "2"
    assert receipt.vendor_ref.startswith("2@")
    assert timezone.datetime.fromisoformat(receipt.vendor_ref.split("@", 1)[1]) <= timezone.now()
    assert PIN not in json.dumps(receipt.request_summary)
    assert responses.calls[-1].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_it_reuses_the_codes_own_slot_on_update(provider, lock, code):
    code.vendor_code_ref = "5"
    mock_status({"1": "Cleaner", "5": "Ana Costa"})
    mock_command("ACCEPTED")

    receipt = provider.update_code(lock, code)

    assert sent_command()["arguments"] == [5, PIN, "Ana Costa"]
    assert receipt.vendor_code_ref == "5"


@responses.activate
def test_it_does_not_overwrite_a_slot_another_code_took_meanwhile(provider, lock, code):
    code.vendor_code_ref = "1"
    mock_status({"1": "Someone else"})
    mock_command("ACCEPTED")

    receipt = provider.update_code(lock, code)

    assert sent_command()["arguments"][0] == 2
    assert receipt.vendor_code_ref == "2"


@responses.activate
def test_it_raises_slots_full_when_every_slot_is_taken(provider, lock, code):
    mock_status({"0": "Master", "1": "a", "2": "b", "3": "c"}, max_codes=3)

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.SLOTS_FULL
    assert not caught.value.transient
    assert len(responses.calls) == 1  # nothing was sent


@responses.activate
def test_it_takes_max_codes_from_the_lock_when_the_device_does_not_say(provider, lock, code):
    lock.requirements = {"max_active_codes": 2}
    mock_status({"1": "a", "2": "b"}, max_codes=None)

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.SLOTS_FULL


@responses.activate
def test_it_reports_a_completed_command_as_done(provider, lock, code):
    mock_status({})
    mock_command("COMPLETED")

    assert provider.create_code(lock, code).progress == Progress.DONE


@responses.activate
def test_it_raises_when_the_platform_did_not_dispatch_the_command(provider, lock, code):
    mock_status({})
    mock_command("FAILED")

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.VENDOR_ERROR
    assert caught.value.transient


@responses.activate
def test_it_deletes_the_codes_slot(provider, lock, code):
    code.vendor_code_ref = "4"
    mock_command("ACCEPTED")

    receipt = provider.delete_code(lock, code)

    assert sent_command()["command"] == "deleteCode"
    assert sent_command()["arguments"] == [4]
    assert receipt.progress == Progress.PENDING
    assert receipt.vendor_ref.startswith("4@")


@responses.activate
def test_it_finds_the_slot_by_name_when_a_delete_has_no_slot_recorded(provider, lock, code):
    mock_status({"1": "Cleaner", "6": "Ana Costa"})
    mock_command("ACCEPTED")

    provider.delete_code(lock, code)

    assert sent_command()["arguments"] == [6]


@responses.activate
def test_it_answers_done_when_a_delete_finds_nothing_on_the_lock(provider, lock, code):
    mock_status({"1": "Cleaner"})

    receipt = provider.delete_code(lock, code)

    assert receipt.progress == Progress.DONE
    assert len(responses.calls) == 1


@responses.activate
def test_it_asks_the_lock_to_reload_all_codes(provider, lock):
    mock_command("ACCEPTED")

    receipt = provider.reload_codes(lock)

    assert sent_command()["command"] == "reloadAllCodes"
    assert receipt.progress == Progress.PENDING


@responses.activate
def test_it_reads_slots_and_names_but_no_pins(provider, lock):
    mock_status({"0": "Master", "2": "Ana Costa", "10": "Cleaner"})

    observed = provider.read_codes(lock)

    assert [(c.vendor_code_ref, c.name, c.pin) for c in observed] == [
        ("2", "Ana Costa", None),
        ("10", "Cleaner", None),
    ]


# --- the sweeper's poll


@pytest.mark.parametrize(
    ("action", "slots", "expected"),
    [
        ("create", {"2": "Ana Costa"}, Progress.DONE),
        ("create", {}, Progress.PENDING),
        ("create", {"2": "Someone else"}, Progress.PENDING),
        ("update", {"2": "Ana Costa"}, Progress.DONE),
        ("delete", {}, Progress.DONE),
        ("delete", {"2": "Ana Costa"}, Progress.PENDING),
    ],
)
@responses.activate
def test_it_reads_a_commands_outcome_from_the_device_status(provider, lock, code, action, slots, expected):
    command = factories.LockCommandFactory(
        tenant=lock.tenant, lock=lock, access_code=code, action=action, vendor_ref="2@2026-11-22T05:00:00+00:00"
    )
    mock_status(slots)

    outcome = provider.command_status(lock, command)

    assert outcome.progress == expected
    assert outcome.vendor_code_ref == "2"


# --- devices


@responses.activate
def test_it_lists_lock_devices_with_their_code_rules_and_health(provider):
    responses.get(
        f"{API}/devices",
        match=[responses.matchers.query_param_matcher({"capability": "lockCodes"})],
        json={
            "items": [{"deviceId": DEVICE, "name": "Schlage BE469", "label": "Front door"}],
            "_links": {"next": {"href": f"{API}/devices?capability=lockCodes&page=1"}},
        },
    )
    responses.get(
        f"{API}/devices",
        match=[responses.matchers.query_param_matcher({"capability": "lockCodes", "page": "1"})],
        json={"items": [{"deviceId": "dev-2", "name": "Yale YRD256"}], "_links": {}},
    )
    extra = {"minCodeLength": {"value": 4}, "maxCodeLength": {"value": 6}}
    responses.get(f"{API}/devices/{DEVICE}/status", json=status_body({}, max_codes=30, extra=extra))
    responses.get(f"{API}/devices/dev-2/status", json=status_body({}, max_codes=None))
    responses.get(f"{API}/devices/{DEVICE}/health", json={"deviceId": DEVICE, "state": "ONLINE"})
    responses.get(f"{API}/devices/dev-2/health", json={"deviceId": "dev-2", "state": "OFFLINE"})

    front, yale = provider.list_devices()

    assert front.vendor_device_id == DEVICE
    assert front.name == "Front door"
    assert front.requirements == {"code_lengths": [4, 5, 6], "max_active_codes": 30, "constraints": []}
    assert front.native_scheduling is False
    assert front.pin_readable is False
    assert front.online is True
    assert yale.requirements["code_lengths"] == [4, 5, 6, 7, 8]
    assert "max_active_codes" not in yale.requirements
    assert yale.online is False


# --- errors at the HTTP edge


@pytest.mark.parametrize(
    ("status", "reason", "transient"),
    [
        (400, Reason.INVALID_PIN, False),
        (401, Reason.AUTH_FAILED, False),
        (403, Reason.AUTH_FAILED, False),
        (404, Reason.NOT_FOUND_ON_DEVICE, False),
        (409, Reason.BUSY, True),
        (422, Reason.INVALID_PIN, False),
        (423, Reason.BUSY, True),
        (429, Reason.RATE_LIMITED, True),
        (500, Reason.VENDOR_ERROR, True),
        (503, Reason.VENDOR_ERROR, True),
    ],
)
@responses.activate
def test_it_normalizes_http_errors_without_leaking_the_pin(provider, lock, code, status, reason, transient):
    mock_status({})
    responses.post(
        f"{API}/devices/{DEVICE}/commands",
        status=status,
        json={"requestId": "r-1", "error": {"code": "Error", "message": f"rejected setCode 1 {PIN} for {TOKEN}"}},
        headers={"Retry-After": "30"},
    )

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == reason
    assert caught.value.transient is transient
    assert caught.value.status_code == status
    assert PIN not in caught.value.vendor_detail and PIN not in str(caught.value)
    assert TOKEN not in caught.value.vendor_detail
    if status == 429:
        assert caught.value.retry_after == 30


@responses.activate
def test_it_reports_a_timeout_as_transient(provider, lock, code):
    mock_status({})
    responses.post(f"{API}/devices/{DEVICE}/commands", body=requests.exceptions.ReadTimeout("slow"))

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.TIMEOUT
    assert caught.value.transient


@responses.activate
def test_it_reports_malformed_json_as_a_vendor_error(provider, lock, code):
    responses.get(f"{API}/devices/{DEVICE}/status", body="<html>gateway</html>", status=200)

    with pytest.raises(ProviderError) as caught:
        provider.create_code(lock, code)

    assert caught.value.reason == Reason.VENDOR_ERROR
    assert caught.value.transient


@responses.activate
def test_it_reports_a_garbled_lock_codes_attribute_as_a_vendor_error(provider, lock):
    responses.get(
        f"{API}/devices/{DEVICE}/status",
        json={"components": {"main": {"lockCodes": {"lockCodes": {"value": "{not json"}}}}},
    )

    with pytest.raises(ProviderError) as caught:
        provider.read_codes(lock)

    assert caught.value.reason == Reason.VENDOR_ERROR


# --- webhooks


def lifecycle_event(*events: dict) -> dict:
    return {
        "lifecycle": "EVENT",
        "executionId": "e-1",
        "locale": "en",
        "version": "1.0.0",
        "eventData": {"authToken": "not-used", "installedApp": {"installedAppId": "ia-1"}, "events": list(events)},
    }


def device_event(event_id: str, capability: str, attribute: str, value, data=None) -> dict:
    return {
        "eventTime": "2026-11-22T05:00:00Z",
        "eventType": "DEVICE_EVENT",
        "deviceEvent": {
            "eventId": event_id,
            "locationId": "loc-1",
            "deviceId": DEVICE,
            "componentId": "main",
            "capability": capability,
            "attribute": attribute,
            "value": value,
            "valueType": "string",
            "stateChange": True,
            "data": data or {},
            "subscriptionName": "lockCodes_sub",
        },
    }


def signed_headers(body: bytes, key: rsa.RSAPrivateKey, *, date=None, path: str = WEBHOOK_PATH) -> dict:
    date_header = format_datetime(date or timezone.now(), usegmt=True)
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    signing_string = f"(request-target): post {path}\ndigest: {digest}\ndate: {date_header}"
    signature = base64.b64encode(key.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return {
        "Authorization": (
            f'Signature keyId="/SmartThings/ab:cd",signature="{signature}",'
            f'headers="(request-target) digest date",algorithm="rsa-sha256"'
        ),
        "Digest": digest,
        "Date": date_header,
        "X-Lockstep-Request-Path": WEBHOOK_PATH,
        "Content-Type": "application/json",
    }


def code_changed_body(value: str = "2 set", event_id: str = "ev-1") -> bytes:
    return json.dumps(lifecycle_event(device_event(event_id, "lockCodes", "codeChanged", value))).encode()


def test_it_accepts_a_correctly_signed_event(provider, app_key):
    body = code_changed_body()

    provider.verify_webhook(body, signed_headers(body, app_key))


def test_it_rejects_a_signature_by_another_key(provider, other_key):
    body = code_changed_body()

    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(body, signed_headers(body, other_key))


def test_it_rejects_a_body_that_does_not_match_its_digest(provider, app_key):
    headers = signed_headers(code_changed_body("2 set"), app_key)

    with pytest.raises(WebhookVerificationError, match="Digest"):
        provider.verify_webhook(code_changed_body("2 deleted"), headers)


def test_it_rejects_a_signature_for_another_path(provider, app_key):
    body = code_changed_body()
    headers = signed_headers(body, app_key, path="/webhooks/smartthings/someone-else/")

    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(body, headers)


def test_it_rejects_a_stale_date(provider, app_key):
    body = code_changed_body()
    headers = signed_headers(body, app_key, date=timezone.now() - timedelta(minutes=6))

    with pytest.raises(WebhookVerificationError, match="stale"):
        provider.verify_webhook(body, headers)


def test_it_rejects_an_unsigned_event(provider):
    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(code_changed_body(), {"X-Lockstep-Request-Path": WEBHOOK_PATH})


def test_it_rejects_a_signed_event_when_the_intake_gave_no_path(provider, app_key):
    body = code_changed_body()
    headers = signed_headers(body, app_key)
    del headers["X-Lockstep-Request-Path"]

    with pytest.raises(WebhookVerificationError, match="x-lockstep-request-path"):
        provider.verify_webhook(body, headers)


def test_it_gives_a_replayed_event_the_same_id(provider):
    assert provider.webhook_event_id(code_changed_body(event_id="ev-7"), {}) == "ev-7"
    assert provider.webhook_event_id(code_changed_body(event_id="ev-7"), {}) == provider.webhook_event_id(
        code_changed_body(event_id="ev-7"), {}
    )
    assert provider.webhook_event_id(code_changed_body(event_id="ev-8"), {}) != "ev-7"


def test_it_answers_ping_with_its_challenge_without_a_signature(provider):
    body = json.dumps({"lifecycle": "PING", "pingData": {"challenge": "1a904d57-4fab-4b15"}}).encode()

    provider.verify_webhook(body, {})
    reply = provider.webhook_reply(body, {})

    assert reply.status == 200
    assert reply.body == {"pingData": {"challenge": "1a904d57-4fab-4b15"}}
    assert provider.parse_webhook(body, {}) == []


def test_it_answers_confirmation_and_shows_the_url_to_open(provider, app_key):
    url = "https://api.smartthings.com/apps/app-1/confirm-registration?token=t"
    body = json.dumps(
        {"lifecycle": "CONFIRMATION", "confirmationData": {"appId": "app-1", "confirmationUrl": url}}
    ).encode()

    reply = provider.webhook_reply(body, signed_headers(body, app_key))
    (event,) = provider.parse_webhook(body, {})

    assert reply.status == 200
    assert event.kind == EventKind.IGNORED
    assert url in event.detail


def test_it_refuses_an_unsigned_confirmation(provider):
    body = json.dumps({"lifecycle": "CONFIRMATION", "confirmationData": {"appId": "a", "confirmationUrl": "u"}}).encode()

    assert provider.webhook_reply(body, {"X-Lockstep-Request-Path": WEBHOOK_PATH}).status == 401


def test_it_lets_events_be_stored_rather_than_answered(provider):
    assert provider.webhook_reply(code_changed_body(), {}) is None


@pytest.mark.parametrize(
    ("value", "kind", "slot", "reason", "clash"),
    [
        ("2 set", EventKind.CODE_SET, "2", "", ""),
        ("2 changed", EventKind.CODE_SET, "2", "", ""),
        ("2 deleted", EventKind.CODE_REMOVED, "2", "", ""),
        ("2 unset", EventKind.CODE_REMOVED, "2", "", ""),
        ("1 failed", EventKind.CODE_FAILED, "1", Reason.NACK, ""),
        ("2 renamed", EventKind.IGNORED, "2", "", ""),
        ("0 set", EventKind.IGNORED, "", "", ""),
        ("all deleted", EventKind.CODES_CLEARED, "", "", ""),
    ],
)
def test_it_parses_code_changed_values(provider, value, kind, slot, reason, clash):
    (event,) = provider.parse_webhook(code_changed_body(value, event_id="ev-3"), {})

    assert event.kind == kind
    assert event.vendor_code_ref == slot
    assert event.reason == reason
    assert event.clash_code_ref == clash
    assert event.vendor_event_id == "ev-3"
    assert event.vendor_device_id == DEVICE
    assert event.occurred_at is not None


def test_it_reads_a_duplicate_hint_in_a_failed_code_event(provider):
    body = json.dumps(
        lifecycle_event(
            device_event("ev-4", "lockCodes", "codeChanged", "3 failed", {"codeName": "Ana", "reason": "duplicate"})
        )
    ).encode()

    (event,) = provider.parse_webhook(body, {})

    assert event.kind == EventKind.CODE_FAILED
    assert event.reason == Reason.DUPLICATE_PIN
    assert event.vendor_code_ref == "3"


def test_it_reads_an_emptied_lock_codes_attribute_as_no_change_of_its_own(provider):
    # `{}` starts every reload (ours too); the per-slot "N deleted" events carry a real wipe.
    body = json.dumps(lifecycle_event(device_event("ev-5", "lockCodes", "lockCodes", "{}"))).encode()

    (event,) = provider.parse_webhook(body, {})

    assert event.kind == EventKind.IGNORED
    assert "reload" in event.detail


def test_it_still_reads_all_deleted_as_all_cleared(provider):
    (event,) = provider.parse_webhook(code_changed_body("all deleted"), {})

    assert event.kind == EventKind.CODES_CLEARED


def test_it_parses_the_single_event_subscription_shape(provider):
    body = json.dumps({"event": device_event("ev-6", "lockCodes", "codeChanged", "1 failed")}).encode()

    (event,) = provider.parse_webhook(body, {})

    assert (event.kind, event.vendor_code_ref, event.vendor_event_id) == (EventKind.CODE_FAILED, "1", "ev-6")


@pytest.mark.parametrize(
    ("status_code", "kind", "reason"),
    [
        ("success", EventKind.COMMAND_SUCCEEDED, ""),
        ("failure", EventKind.COMMAND_FAILED, Reason.NACK),
        ("duplicate", EventKind.COMMAND_FAILED, Reason.DUPLICATE_PIN),
        ("occupied", EventKind.COMMAND_FAILED, Reason.DESYNC),
        ("invalidCommand", EventKind.COMMAND_FAILED, Reason.INVALID_PIN),
        ("resourceExhausted", EventKind.COMMAND_FAILED, Reason.SLOTS_FULL),
        ("busy", EventKind.COMMAND_FAILED, Reason.BUSY),
        ("somethingNew", EventKind.COMMAND_FAILED, Reason.VENDOR_ERROR),
    ],
)
def test_it_maps_lock_credentials_command_results(provider, status_code, kind, reason):
    value = {"commandName": "addCredential", "statusCode": status_code, "credentialIndex": 4}
    body = json.dumps(lifecycle_event(device_event("ev-6", "lockCredentials", "commandResult", value))).encode()

    (event,) = provider.parse_webhook(body, {})

    assert event.kind == kind
    assert event.reason == reason
    assert event.vendor_code_ref == "4"


@pytest.mark.parametrize(("status", "kind"), [("ONLINE", EventKind.DEVICE_ONLINE), ("OFFLINE", EventKind.DEVICE_OFFLINE)])
def test_it_reads_device_health_events(provider, status, kind):
    body = json.dumps(
        lifecycle_event(
            {
                "eventTime": "2026-11-22T05:00:00Z",
                "eventType": "DEVICE_HEALTH_EVENT",
                "deviceHealthEvent": {"eventId": "h-1", "deviceId": DEVICE, "status": status, "reason": "NONE"},
            }
        )
    ).encode()

    (event,) = provider.parse_webhook(body, {})

    assert event.kind == kind
    assert event.vendor_event_id == "h-1"


def test_it_reads_battery_events(provider):
    body = json.dumps(lifecycle_event(device_event("ev-9", "battery", "battery", 35))).encode()

    (event,) = provider.parse_webhook(body, {})

    assert event.kind == EventKind.BATTERY
    assert event.battery_level == pytest.approx(0.35)


def test_it_gives_a_batch_one_stable_id(provider):
    first = device_event("ev-a", "lockCodes", "codeChanged", "1 set")
    second = device_event("ev-b", "lockCodes", "codeChanged", "2 set")
    forward = json.dumps(lifecycle_event(first, second)).encode()
    backward = json.dumps(lifecycle_event(second, first)).encode()

    assert len(provider.parse_webhook(forward, {})) == 2
    assert provider.webhook_event_id(forward, {}) == provider.webhook_event_id(backward, {})
    assert len(provider.webhook_event_id(forward, {})) <= 200
