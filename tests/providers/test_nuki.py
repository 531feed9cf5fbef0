"""The Nuki Web API adapter against Nuki-shaped HTTP (VENDORS.md §3), patched with `responses`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from django.utils import timezone
from responses import matchers

from portal.encryption import fingerprint
from providers.base import EventKind, Progress, ProviderError, Reason, WebhookVerificationError
from providers.models import WebhookEvent
from providers.nuki import NukiProvider, nuki_signature
from providers.registry import get_provider
from tests import factories

BASE = "http://127.0.0.1:9"
TOKEN = "nuki_token_9c1e77"
PIN = "483926"
SECRET = "nuki-decentral-webhook-secret"
STARTS = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
ENDS = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
AUTHS = f"{BASE}/smartlock/17/auth"


@pytest.fixture
def account(db):
    return factories.ProviderAccountFactory(
        vendor="nuki", credentials={"api_token": TOKEN, "base_url": BASE}, webhook_secret=SECRET
    )


@pytest.fixture
def lock(account):
    return factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="17")


@pytest.fixture
def code(lock):
    return factories.AccessCodeFactory(
        tenant=lock.tenant, lock=lock, name="Ana Costa", pin=PIN, starts_at=STARTS, ends_at=ENDS
    )


@pytest.fixture
def nuki(account) -> NukiProvider:
    provider = get_provider(account)
    assert isinstance(provider, NukiProvider)
    return provider


def auth(**fields):
    return {
        "id": "auth-1",
        "smartlockId": 17,
        "authId": 3,
        "type": 13,
        "name": "Ana Costa",
        "code": int(PIN),
        "enabled": True,
        "allowedFromDate": "2026-12-01T15:00:00.000Z",
        "allowedUntilDate": "2026-12-04T10:00:00.000Z",
        "allowedWeekDays": 127,
        **fields,
    }


def command_for(code, action="create"):
    return factories.LockCommandFactory(tenant=code.tenant, lock=code.lock, access_code=code, action=action)


# --- devices -----------------------------------------------------------------------------------


@responses.activate
def test_it_lists_smartlocks_with_a_keypad_and_nukis_pin_rules(nuki):
    responses.get(
        f"{BASE}/smartlock",
        json=[
            {
                "smartlockId": 17,
                "name": "Front door",
                "type": 4,
                "serverState": 0,
                "config": {"keypadPaired": True},
                "state": {"batteryCharge": 64, "batteryCritical": False},
            },
            {
                "smartlockId": 18,
                "name": "No keypad",
                "type": 4,
                "serverState": 0,
                "config": {"keypadPaired": False},
            },
            {
                "smartlockId": 19,
                "name": "Cellar",
                "type": 0,
                "serverState": 4,
                "state": {"batteryCritical": True},
            },
        ],
    )

    devices = nuki.list_devices()

    assert [d.vendor_device_id for d in devices] == ["17", "19"]
    front, cellar = devices
    assert front.requirements == {
        "code_lengths": [6],
        "max_active_codes": 200,
        "constraints": ["no_zeros", "cannot_start_with_12"],
        "name_max_length": 20,
    }
    assert (front.native_scheduling, front.pin_readable) == (True, True)
    assert (front.online, front.battery_level) == (True, 0.64)
    assert (cellar.online, cellar.battery_level) == (False, 0.1)
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


# --- writes ------------------------------------------------------------------------------------


@responses.activate
def test_it_creates_a_keypad_code_as_a_pending_type_13_auth(nuki, lock, code):
    responses.put(
        AUTHS,
        status=204,
        match=[
            matchers.json_params_matcher(
                {
                    "name": "Ana Costa",
                    "allowedFromDate": "2026-12-01T15:00:00Z",
                    "allowedUntilDate": "2026-12-04T10:00:00Z",
                    "allowedWeekDays": 127,
                    "allowedFromTime": 0,
                    "allowedUntilTime": 0,
                    "code": int(PIN),
                    "type": 13,
                }
            )
        ],
    )

    receipt = nuki.create_code(lock, code)

    assert receipt.progress == Progress.PENDING
    assert receipt.vendor_code_ref == ""  # unknown until the auth shows up in the list
    assert PIN not in json.dumps(receipt.request_summary)


@responses.activate
def test_it_creates_an_ongoing_code_without_dates(nuki, lock, code):
    code.starts_at = code.ends_at = None
    responses.put(AUTHS, status=204)

    nuki.create_code(lock, code)

    sent = json.loads(responses.calls[0].request.body)
    assert "allowedFromDate" not in sent and "allowedUntilDate" not in sent


@responses.activate
def test_it_updates_and_deletes_by_auth_id(nuki, lock, code):
    code.vendor_code_ref = "auth-1"
    responses.post(f"{AUTHS}/auth-1", status=204)
    responses.delete(f"{AUTHS}/auth-1", status=204)

    updated = nuki.update_code(lock, code)
    deleted = nuki.delete_code(lock, code)

    assert (updated.progress, updated.vendor_code_ref) == (Progress.PENDING, "auth-1")
    assert json.loads(responses.calls[0].request.body)["enabled"] is True
    assert (deleted.progress, deleted.vendor_code_ref) == (Progress.PENDING, "auth-1")


@responses.activate
def test_it_finds_the_auth_id_by_name_and_code_when_it_is_not_known_yet(nuki, lock, code):
    responses.get(AUTHS, json=[auth(id="auth-other", name="Someone", code=579246), auth()])
    responses.delete(f"{AUTHS}/auth-1", status=204)

    receipt = nuki.delete_code(lock, code)

    assert receipt.vendor_code_ref == "auth-1"


@responses.activate
def test_it_treats_deleting_an_auth_nuki_no_longer_has_as_done(nuki, lock, code):
    responses.get(AUTHS, json=[])
    responses.delete(f"{AUTHS}/auth-gone", status=404)

    never_there = nuki.delete_code(lock, code)
    gone = nuki.delete_observed_code(lock, "auth-gone")

    assert never_there.progress == Progress.DONE
    assert gone.progress == Progress.DONE


# --- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(401, {"detailMessage": "Not authorized"}, {}, Reason.AUTH_FAILED, False, id="401"),
    pytest.param(403, {}, {}, Reason.AUTH_FAILED, False, id="403"),
    pytest.param(402, {"detailMessage": "Account not payed"}, {}, Reason.AUTH_FAILED, False, id="402"),
    pytest.param(426, {"detailMessage": "Account upgrade required"}, {}, Reason.AUTH_FAILED, False, id="426"),
    pytest.param(404, {}, {}, Reason.NOT_FOUND_ON_DEVICE, False, id="404"),
    pytest.param(
        409,
        {"detailMessage": "The supplied value for parameter 'code' conflicts"},
        {},
        Reason.DUPLICATE_PIN,
        False,
        id="409",
    ),
    pytest.param(
        400,
        {"detailMessage": f"The supplied value '{PIN}' for parameter 'code' is not valid", "stackTrace": []},
        {},
        Reason.INVALID_PIN,
        False,
        id="400-code",
    ),
    pytest.param(
        400,
        {"detailMessage": "The supplied value 'x' for parameter 'allowedUntilDate' is not valid"},
        {},
        Reason.SCHEDULE_INVALID,
        False,
        id="400-schedule",
    ),
    pytest.param(
        400,
        {"detailMessage": "The supplied value '13' for parameter 'type' is not valid"},
        {},
        Reason.UNSUPPORTED,
        False,
        id="400-no-keypad",
    ),
    pytest.param(422, {}, {}, Reason.INVALID_PIN, False, id="422"),
    pytest.param(423, {"stackTrace": [], "suppressedExceptions": []}, {}, Reason.BUSY, True, id="423"),
    pytest.param(429, {}, {"Retry-After": "12"}, Reason.RATE_LIMITED, True, id="429"),
    pytest.param(500, {}, {}, Reason.VENDOR_ERROR, True, id="500"),
]


@responses.activate
@pytest.mark.parametrize(("status", "body", "headers", "reason", "transient"), ERROR_CASES)
def test_it_maps_http_errors_to_reasons(nuki, lock, code, status, body, headers, reason, transient):
    responses.put(AUTHS, status=status, json=body, headers=headers)

    with pytest.raises(ProviderError) as caught:
        nuki.create_code(lock, code)

    error = caught.value
    assert (error.reason, error.transient, error.status_code) == (reason, transient, status)
    assert PIN not in error.vendor_detail and TOKEN not in error.vendor_detail
    if status == 429:
        assert error.retry_after == 12


@responses.activate
def test_it_reports_a_busy_auth_on_update_as_transient(nuki, lock, code):
    code.vendor_code_ref = "auth-1"
    responses.post(f"{AUTHS}/auth-1", status=423, json={"stackTrace": [], "suppressedExceptions": []})

    with pytest.raises(ProviderError) as caught:
        nuki.update_code(lock, code)

    assert (caught.value.reason, caught.value.transient) == (Reason.BUSY, True)


@responses.activate
@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (requests.ReadTimeout("slow"), Reason.TIMEOUT),
        (requests.ConnectionError("refused"), Reason.VENDOR_ERROR),
    ],
)
def test_it_maps_transport_failures_to_transient_reasons(nuki, lock, code, failure, reason):
    responses.put(AUTHS, body=failure)

    with pytest.raises(ProviderError) as caught:
        nuki.create_code(lock, code)

    assert (caught.value.reason, caught.value.transient) == (reason, True)


@responses.activate
def test_it_reports_malformed_json_as_a_vendor_error_with_the_raw_text(nuki):
    responses.get(f"{BASE}/smartlock", body="<html>maintenance</html>", status=200)

    with pytest.raises(ProviderError) as caught:
        nuki.list_devices()

    assert (caught.value.reason, caught.value.transient) == (Reason.VENDOR_ERROR, True)
    assert "<html>maintenance</html>" in caught.value.vendor_detail


# --- command status ----------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("listed", "progress", "reason", "ref"),
    [
        ([], Progress.PENDING, "", ""),
        ([auth(operationId="op-9")], Progress.PENDING, "", "auth-1"),
        ([auth()], Progress.DONE, "", "auth-1"),
        ([auth(code=579246)], Progress.PENDING, "", ""),  # another PIN under our name is not ours
        ([auth(error="keypad rejected")], Progress.FAILED, Reason.NACK, "auth-1"),
    ],
    ids=["not-listed-yet", "operation-running", "applied", "other-code", "auth-error"],
)
def test_it_judges_a_create_from_the_auth_list(nuki, lock, code, listed, progress, reason, ref):
    responses.get(AUTHS, json=listed, match=[matchers.query_param_matcher({"types": "13"})])

    outcome = nuki.command_status(lock, command_for(code))

    assert (outcome.progress, outcome.reason, outcome.vendor_code_ref) == (progress, reason, ref)


@responses.activate
def test_it_fails_an_update_the_lock_did_not_apply(nuki, lock, code):
    code.vendor_code_ref = "auth-1"
    responses.get(AUTHS, json=[auth(allowedUntilDate="2026-12-03T10:00:00.000Z")])

    outcome = nuki.command_status(lock, command_for(code, action="update"))

    assert (outcome.progress, outcome.reason) == (Progress.FAILED, Reason.NACK)


@responses.activate
def test_it_judges_an_update_by_what_it_sent_not_by_a_newer_pin(nuki, lock, code):
    code.vendor_code_ref = "auth-1"
    command = command_for(code, action="update")
    command.sent_code_ref, command.sent_name, command.sent_pin_fingerprint = "auth-1", code.name, fingerprint(PIN)
    command.sent_starts_at, command.sent_ends_at = STARTS, ENDS
    code.pin = "579246"  # a quick second edit, waiting behind this update
    responses.get(AUTHS, json=[auth()])
    responses.get(AUTHS, json=[auth(code=579246)])

    applied = nuki.command_status(lock, command)
    other = nuki.command_status(lock, command)

    assert (applied.progress, applied.vendor_code_ref) == (Progress.DONE, "auth-1")
    assert (other.progress, other.reason) == (Progress.FAILED, Reason.NACK)  # not what it sent


@responses.activate
def test_it_completes_a_delete_once_the_auth_is_gone(nuki, lock, code):
    code.vendor_code_ref = "auth-1"
    responses.get(AUTHS, json=[auth(operationId="op-2")])
    responses.get(AUTHS, json=[])

    still_there = nuki.command_status(lock, command_for(code, action="delete"))
    gone = nuki.command_status(lock, command_for(code, action="delete"))

    assert still_there.progress == Progress.PENDING
    assert gone.progress == Progress.DONE


# --- reading -----------------------------------------------------------------------------------


@responses.activate
def test_it_syncs_before_reading_codes_and_reads_even_when_the_sync_fails(nuki, lock):
    responses.post(f"{BASE}/smartlock/17/sync", status=423)
    responses.get(
        AUTHS,
        json=[
            auth(),
            auth(id="auth-2", name="Cleaner", code=579246, operationId="op"),
            auth(id="app", type=0),
        ],
    )

    observed = nuki.read_codes(lock)

    assert [c.request.method for c in responses.calls] == ["POST", "GET"]
    assert [(o.vendor_code_ref, o.status) for o in observed] == [("auth-1", "set"), ("auth-2", "setting")]
    assert observed[0].pin == PIN
    assert (observed[0].starts_at, observed[0].ends_at) == (STARTS, ENDS)


# --- webhooks ----------------------------------------------------------------------------------


def signed(payload, secret=SECRET):
    body = json.dumps(payload).encode()
    return body, {"X-Nuki-Signature-SHA256": nuki_signature(body, secret=secret)}


AUTH_EVENT = {"feature": "DEVICE_AUTHS", "deleted": False, "smartlockAuth": auth()}
STATUS_EVENT = {
    "feature": "DEVICE_STATUS",
    "smartlockId": 17,
    "state": {"batteryCritical": True, "batteryCharge": 8, "keypadBatteryCritical": False},
    "serverState": 4,
    "adminPinState": 0,
}


def test_it_accepts_a_valid_signature(nuki):
    body, headers = signed(AUTH_EVENT)

    nuki.verify_webhook(body, {"x-nuki-signature-sha256": headers["X-Nuki-Signature-SHA256"].upper()})


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, headers: (body + b"\n", headers), id="body-changed"),
        pytest.param(
            lambda body, headers: (body, {"X-Nuki-Signature-SHA256": "00" * 32}), id="wrong-signature"
        ),
        pytest.param(lambda body, headers: (body, {}), id="no-signature"),
        pytest.param(
            lambda body, headers: signed(json.loads(body), secret="another-secret"), id="other-secret"
        ),
    ],
)
def test_it_rejects_a_wrong_signature(nuki, tamper):
    body, headers = tamper(*signed(AUTH_EVENT))

    with pytest.raises(WebhookVerificationError):
        nuki.verify_webhook(body, headers)


def test_it_derives_a_stable_event_id_because_nuki_sends_none(nuki):
    """Nuki signs no timestamp, so there is no staleness check: a replay is caught by this id."""
    body, headers = signed(AUTH_EVENT)
    other_body, other_headers = signed({**AUTH_EVENT, "deleted": True})

    replayed = nuki.webhook_event_id(body, headers)

    assert replayed == nuki.webhook_event_id(body, headers)
    assert replayed != nuki.webhook_event_id(other_body, other_headers)
    assert replayed.startswith("nuki-")
    assert nuki.parse_webhook(body, headers)[0].vendor_event_id == replayed
    # the intake stores the payload as JSON and re-serializes it before processing: same id
    reserialized = json.dumps(json.loads(body), indent=2).encode()
    assert nuki.parse_webhook(reserialized, headers)[0].vendor_event_id == replayed


def test_it_parses_a_keypad_auth_as_set_or_removed(nuki):
    (set_event,) = nuki.parse_webhook(*signed(AUTH_EVENT))
    (removed,) = nuki.parse_webhook(*signed({**AUTH_EVENT, "deleted": True}))
    (running,) = nuki.parse_webhook(*signed({**AUTH_EVENT, "smartlockAuth": auth(operationId="op")}))
    (app_auth,) = nuki.parse_webhook(*signed({**AUTH_EVENT, "smartlockAuth": auth(type=0)}))

    assert (set_event.kind, set_event.vendor_code_ref, set_event.vendor_device_id) == (
        EventKind.CODE_SET,
        "auth-1",
        "17",
    )
    assert set_event.pin == PIN
    assert removed.kind == EventKind.CODE_REMOVED
    assert running.kind == EventKind.IGNORED
    assert app_auth.kind == EventKind.IGNORED


def test_it_parses_device_status_into_offline_and_battery(nuki):
    events = nuki.parse_webhook(*signed(STATUS_EVENT))
    (online,) = nuki.parse_webhook(
        *signed({**STATUS_EVENT, "serverState": 0, "state": {"batteryCharge": 90}})
    )

    assert [e.kind for e in events] == [EventKind.DEVICE_OFFLINE, EventKind.BATTERY]
    assert events[1].battery_level == 0.08
    assert online.kind == EventKind.DEVICE_ONLINE


def test_it_ignores_features_it_has_no_use_for(nuki):
    (event,) = nuki.parse_webhook(*signed({"feature": "DEVICE_LOGS", "smartlockId": 17}))

    assert (event.kind, event.raw_type) == (EventKind.IGNORED, "DEVICE_LOGS")


@pytest.mark.parametrize("body", [b"nope", b"{}", b"[]"])
def test_it_refuses_a_body_that_is_not_a_nuki_webhook(nuki, body):
    with pytest.raises(WebhookVerificationError):
        nuki.parse_webhook(body, {})


# --- through the webhook intake ----------------------------------------------------------------


def post_webhook(client, account, body, headers):
    return client.post(
        f"/webhooks/nuki/{account.uuid}/", data=body, content_type="application/json", headers=headers
    )


def test_it_stores_a_signed_delivery_once_and_rejects_a_forged_one(client, account):
    body, headers = signed(STATUS_EVENT)
    forged_body, forged_headers = signed({**STATUS_EVENT, "serverState": 0}, secret="not-the-secret")

    first = post_webhook(client, account, body, headers)
    replay = post_webhook(client, account, body, headers)
    forged = post_webhook(client, account, forged_body, forged_headers)

    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert (replay.status_code, replay.json()["duplicate"]) == (200, True)
    assert forged.status_code == 401
    assert WebhookEvent.objects.filter(provider_account=account).count() == 1


def test_it_confirms_an_in_flight_create_from_a_device_auths_webhook(
    client, account, lock, django_capture_on_commit_callbacks
):
    now = timezone.now()
    code = factories.AccessCodeFactory(
        tenant=lock.tenant,
        lock=lock,
        name="Ana Costa",
        pin=PIN,
        status="setting",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=2),
    )
    command = factories.LockCommandFactory(
        tenant=lock.tenant, lock=lock, access_code=code, action="create", state="sent", sent_at=now
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, account, *signed(AUTH_EVENT))

    assert response.status_code == 200
    command.refresh_from_db()
    code.refresh_from_db()
    assert command.state == "succeeded"
    assert (code.status, code.vendor_code_ref) == ("set", "auth-1")


def test_it_refuses_a_pin_nuki_cannot_hold_before_sending(nuki, lock, code):
    code.pin = "48A926"

    with pytest.raises(ProviderError) as caught:
        nuki.create_code(lock, code)

    assert caught.value.reason == Reason.INVALID_PIN


@responses.activate
def test_it_keeps_online_unknown_when_nuki_omits_the_server_state(nuki):
    responses.get(f"{BASE}/smartlock", json=[{"smartlockId": 21, "name": "Side", "serverState": None}])

    (device,) = nuki.list_devices()

    assert device.online is None
