"""The Seam adapter against Seam-shaped HTTP (VENDORS.md §1), patched at the HTTP edge with `responses`."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from django.utils import timezone
from responses import matchers

from providers.base import EventKind, Progress, ProviderError, Reason, WebhookVerificationError
from providers.models import WebhookEvent
from providers.registry import get_provider
from providers.seam import SeamProvider, svix_signature
from tests import factories

BASE = "http://127.0.0.1:9"
API_KEY = "seam_test_key_5f3a"
PIN = "482913"
SECRET = "whsec_" + base64.b64encode(b"lockstep-seam-test-signing-key!!").decode()
STARTS = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
ENDS = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def account(db):
    return factories.ProviderAccountFactory(
        vendor="seam", credentials={"api_key": API_KEY, "base_url": BASE}, webhook_secret=SECRET
    )


@pytest.fixture
def lock(account):
    return factories.LockFactory(
        tenant=account.tenant,
        provider_account=account,
        vendor_device_id="device_1",
        requirements={"code_lengths": [4, 6], "constraints": []},
    )


@pytest.fixture
def code(lock):
    return factories.AccessCodeFactory(
        tenant=lock.tenant, lock=lock, name="Ana Costa", pin=PIN, starts_at=STARTS, ends_at=ENDS
    )


@pytest.fixture
def seam(account) -> SeamProvider:
    provider = get_provider(account)
    assert isinstance(provider, SeamProvider)
    return provider


def access_code(**fields):
    return {
        "access_code_id": "ac_1",
        "device_id": "device_1",
        "name": "Ana Costa",
        "code": PIN,
        "type": "time_bound",
        "status": "setting",
        "starts_at": "2026-12-01T15:00:00.000Z",
        "ends_at": "2026-12-04T10:00:00.000Z",
        "errors": [],
        "warnings": [],
        "is_managed": True,
        **fields,
    }


def action_attempt(status="pending", error=None, action_type="CREATE_ACCESS_CODE"):
    return {
        "action_attempt_id": "aa_1",
        "action_type": action_type,
        "status": status,
        "result": None,
        "error": error,
    }


def command_for(code, action="create", vendor_ref="aa_1"):
    return factories.LockCommandFactory(
        tenant=code.tenant, lock=code.lock, access_code=code, action=action, vendor_ref=vendor_ref
    )


# --- devices -----------------------------------------------------------------------------------


@responses.activate
def test_it_lists_code_capable_devices_with_requirements_across_pages(seam):
    nuki = {
        "device_id": "dev_nuki",
        "capabilities_supported": ["lock", "access_code"],
        "can_program_online_access_codes": True,
        "properties": {
            "name": "nuki-raw",
            "appearance": {"name": "Front door"},
            "manufacturer": "nuki",
            "model": {"display_name": "Smart Lock 3.0"},
            "online": True,
            "battery_level": 0.8,
            "supported_code_lengths": [6],
            "max_active_codes_supported": 200,
            "code_constraints": [
                {"constraint_type": "no_zeros"},
                {"constraint_type": "cannot_start_with_12"},
                {"constraint_type": "name_length", "max_length": 20},
            ],
        },
    }
    smartthings = {
        "device_id": "dev_st",
        "capabilities_supported": ["lock", "access_code"],
        "properties": {
            "name": "Back door",
            "manufacturer": "smartthings",
            "online": False,
            "battery": {"level": 0.3},
        },
    }
    thermostat = {
        "device_id": "dev_t",
        "capabilities_supported": ["thermostat"],
        "properties": {"name": "Heat"},
    }
    responses.post(
        f"{BASE}/devices/list",
        json={"devices": [nuki, thermostat], "pagination": {"has_next_page": True, "next_page_cursor": "c2"}},
        match=[matchers.json_params_matcher({})],
    )
    responses.post(
        f"{BASE}/devices/list",
        json={"devices": [smartthings], "pagination": {"has_next_page": False, "next_page_cursor": None}},
        match=[matchers.json_params_matcher({"page_cursor": "c2"})],
    )

    devices = seam.list_devices()

    assert [d.vendor_device_id for d in devices] == ["dev_nuki", "dev_st"]
    front, back = devices
    assert front.name == "Front door"
    assert front.requirements == {
        "code_lengths": [6],
        "max_active_codes": 200,
        "constraints": ["no_zeros", "cannot_start_with_12", "name_length"],
        "name_max_length": 20,
    }
    assert front.native_scheduling is True
    assert front.pin_readable is True
    assert (front.online, front.battery_level) == (True, 0.8)
    assert back.native_scheduling is False  # SmartThings is programmed just in time
    assert (back.online, back.battery_level) == (False, 0.3)
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {API_KEY}"


# --- writes ------------------------------------------------------------------------------------


@responses.activate
def test_it_creates_a_time_bound_code_and_keeps_the_attempt_and_code_ids(seam, lock, code):
    code.common_code_key = "prop-7"
    responses.post(
        f"{BASE}/access_codes/create",
        json={"access_code": access_code(), "action_attempt": action_attempt(), "ok": True},
        match=[
            matchers.json_params_matcher(
                {
                    "device_id": "device_1",
                    "name": "Ana Costa",
                    "code": PIN,
                    "starts_at": "2026-12-01T15:00:00Z",
                    "ends_at": "2026-12-04T10:00:00Z",
                    "common_code_key": "prop-7",
                }
            )
        ],
    )

    receipt = seam.create_code(lock, code)

    assert receipt.progress == Progress.PENDING
    assert (receipt.vendor_ref, receipt.vendor_code_ref) == ("aa_1", "ac_1")
    assert receipt.pin == ""
    assert PIN not in json.dumps(receipt.request_summary)
    assert receipt.request_summary["starts_at"] == "2026-12-01T15:00:00Z"


@responses.activate
def test_it_creates_an_ongoing_code_when_both_dates_are_empty(seam, lock, code):
    code.starts_at = code.ends_at = None
    responses.post(
        f"{BASE}/access_codes/create",
        json={"access_code": access_code(type="ongoing", starts_at=None, ends_at=None), "ok": True},
        match=[matchers.json_params_matcher({"device_id": "device_1", "name": "Ana Costa", "code": PIN})],
    )

    receipt = seam.create_code(lock, code)

    assert receipt.progress == Progress.PENDING
    assert receipt.vendor_ref == ""  # the fake answers without an action attempt; the code id suffices
    assert receipt.vendor_code_ref == "ac_1"


@responses.activate
def test_it_lets_the_lock_choose_the_pin_when_it_cannot_be_specified(seam, lock, code):
    lock.requirements = {
        "code_lengths": [4, 6],
        "constraints": [{"constraint_type": "cannot_specify_pin_code"}],
    }
    code.pin = ""
    responses.post(
        f"{BASE}/access_codes/create",
        json={"access_code": access_code(code="715293"), "ok": True},
        match=[matchers.json_params_matcher({"preferred_code_length": 6}, strict_match=False)],
    )

    receipt = seam.create_code(lock, code)

    assert "code" not in json.loads(responses.calls[0].request.body)
    assert receipt.pin == "715293"


@responses.activate
def test_it_updates_a_code_to_ongoing_by_its_access_code_id(seam, lock, code):
    code.vendor_code_ref = "ac_1"
    code.starts_at = code.ends_at = None
    responses.post(
        f"{BASE}/access_codes/update",
        json={"action_attempt": action_attempt(action_type="UPDATE_ACCESS_CODE"), "ok": True},
        match=[
            matchers.json_params_matcher(
                {"access_code_id": "ac_1", "name": "Ana Costa", "code": PIN, "type": "ongoing"}
            )
        ],
    )

    receipt = seam.update_code(lock, code)

    assert (receipt.progress, receipt.vendor_ref, receipt.vendor_code_ref) == (
        Progress.PENDING,
        "aa_1",
        "ac_1",
    )
    assert receipt.request_summary["code"] == "[redacted]"


def test_it_refuses_to_update_a_code_seam_never_created(seam, lock, code):
    with pytest.raises(ProviderError) as caught:
        seam.update_code(lock, code)

    assert caught.value.reason == Reason.NOT_FOUND_ON_DEVICE


@responses.activate
def test_it_deletes_a_code_and_treats_an_unknown_one_as_removed(seam, lock, code):
    code.vendor_code_ref = "ac_1"
    responses.post(
        f"{BASE}/access_codes/delete",
        json={"action_attempt": action_attempt(action_type="DELETE_ACCESS_CODE"), "ok": True},
        match=[matchers.json_params_matcher({"access_code_id": "ac_1"})],
    )
    responses.post(
        f"{BASE}/access_codes/delete",
        status=404,
        json={
            "error": {"type": "access_code_not_found", "message": "Could not find an access_code"},
            "ok": False,
        },
        match=[matchers.json_params_matcher({"access_code_id": "ac_gone"})],
    )

    deleting = seam.delete_code(lock, code)
    gone = seam.delete_observed_code(lock, "ac_gone")

    assert (deleting.progress, deleting.vendor_ref) == (Progress.PENDING, "aa_1")
    assert gone.progress == Progress.DONE


# --- errors ------------------------------------------------------------------------------------


def seam_error(error_type, message="", **extra):
    return {"error": {"type": error_type, "message": message, **extra}, "ok": False}


ERROR_CASES = [
    pytest.param(
        401, seam_error("unauthorized", "API Key not found"), {}, Reason.AUTH_FAILED, False, id="401"
    ),
    pytest.param(403, seam_error("forbidden"), {}, Reason.AUTH_FAILED, False, id="403"),
    pytest.param(
        404,
        seam_error("device_not_found", "Device not found"),
        {},
        Reason.NOT_FOUND_ON_DEVICE,
        False,
        id="404",
    ),
    pytest.param(
        409,
        seam_error("duplicate_access_code", f"Cannot set duplicate access code {PIN} named Ana Costa"),
        {},
        Reason.DUPLICATE_PIN,
        False,
        id="409",
    ),
    pytest.param(
        400,
        seam_error("invalid_input", "bad code", validation_errors={"code": {"_errors": ["too short"]}}),
        {},
        Reason.INVALID_PIN,
        False,
        id="400-code",
    ),
    pytest.param(
        400,
        seam_error(
            "invalid_input", "bad window", validation_errors={"ends_at": {"_errors": ["before start"]}}
        ),
        {},
        Reason.SCHEDULE_INVALID,
        False,
        id="400-schedule",
    ),
    pytest.param(422, {"detail": "unprocessable"}, {}, Reason.INVALID_PIN, False, id="422"),
    pytest.param(423, {}, {}, Reason.BUSY, True, id="423"),
    pytest.param(429, seam_error("rate_limited"), {"Retry-After": "30"}, Reason.RATE_LIMITED, True, id="429"),
    pytest.param(500, seam_error("internal_server_error"), {}, Reason.VENDOR_ERROR, True, id="500"),
    pytest.param(503, "upstream down", {}, Reason.VENDOR_ERROR, True, id="503-text"),
]


@responses.activate
@pytest.mark.parametrize(("status", "body", "headers", "reason", "transient"), ERROR_CASES)
def test_it_maps_http_errors_to_reasons(seam, lock, code, status, body, headers, reason, transient):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.post(f"{BASE}/access_codes/create", status=status, headers=headers, **kwargs)

    with pytest.raises(ProviderError) as caught:
        seam.create_code(lock, code)

    error = caught.value
    assert (error.reason, error.transient, error.status_code) == (reason, transient, status)
    assert PIN not in error.vendor_detail and PIN not in str(error)
    assert API_KEY not in error.vendor_detail
    if status == 429:
        assert error.retry_after == 30
    if status == 409:
        assert "duplicate_access_code" in error.vendor_detail


@responses.activate
@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (requests.ConnectTimeout("slow"), Reason.TIMEOUT),
        (requests.ReadTimeout("slow"), Reason.TIMEOUT),
        (requests.ConnectionError("refused"), Reason.VENDOR_ERROR),
    ],
)
def test_it_maps_transport_failures_to_transient_reasons(seam, lock, code, failure, reason):
    responses.post(f"{BASE}/access_codes/create", body=failure)

    with pytest.raises(ProviderError) as caught:
        seam.create_code(lock, code)

    assert caught.value.reason == reason
    assert caught.value.transient is True


@responses.activate
def test_it_reports_malformed_json_as_a_vendor_error_with_the_raw_text(seam, lock, code):
    responses.post(f"{BASE}/access_codes/create", body="<html>Bad gateway</html>", status=200)

    with pytest.raises(ProviderError) as caught:
        seam.create_code(lock, code)

    assert caught.value.reason == Reason.VENDOR_ERROR
    assert caught.value.transient is True
    assert "<html>Bad gateway</html>" in caught.value.vendor_detail


@responses.activate
def test_it_redacts_the_api_key_and_pin_a_vendor_echoes_back(seam, lock, code):
    responses.post(f"{BASE}/access_codes/create", status=400, body=f"rejected key {API_KEY} with code {PIN}")

    with pytest.raises(ProviderError) as caught:
        seam.create_code(lock, code)

    assert API_KEY not in caught.value.vendor_detail
    assert PIN not in caught.value.vendor_detail
    assert "[redacted]" in caught.value.vendor_detail


# --- command status ----------------------------------------------------------------------------


def stub_attempt(status, error=None, action_type="CREATE_ACCESS_CODE"):
    responses.post(
        f"{BASE}/action_attempts/get",
        json={"action_attempt": action_attempt(status, error, action_type), "ok": True},
        match=[matchers.json_params_matcher({"action_attempt_id": "aa_1"})],
    )


def stub_code(http_status=200, **fields):
    if http_status == 404:
        responses.post(f"{BASE}/access_codes/get", status=404, json=seam_error("access_code_not_found"))
    else:
        responses.post(
            f"{BASE}/access_codes/get",
            json={"access_code": access_code(**fields), "ok": True},
            match=[matchers.json_params_matcher({"access_code_id": "ac_1"})],
        )


@responses.activate
def test_it_fails_a_command_whose_action_attempt_errored(seam, lock, code):
    code.vendor_code_ref = "ac_1"
    stub_attempt("error", {"type": "action_attempt_expired", "message": "took too long"})

    outcome = seam.command_status(lock, command_for(code))

    assert (outcome.progress, outcome.reason) == (Progress.FAILED, Reason.TIMEOUT)
    assert "action_attempt_expired" in outcome.detail


@responses.activate
def test_it_completes_a_delete_when_the_action_attempt_succeeded(seam, lock, code):
    code.vendor_code_ref = "ac_1"
    stub_attempt("success", action_type="DELETE_ACCESS_CODE")

    outcome = seam.command_status(lock, command_for(code, action="delete"))

    assert outcome.progress == Progress.DONE


@responses.activate
@pytest.mark.parametrize(
    ("fields", "progress"),
    [
        ({"status": "set"}, Progress.DONE),
        ({"status": "unset", "is_scheduled_on_device": True}, Progress.DONE),
        ({"status": "unset", "is_scheduled_on_device": False}, Progress.PENDING),
        ({"status": "setting"}, Progress.PENDING),
        ({"status": "set", "pending_mutations": [{"mutation_code": "updating_code"}]}, Progress.PENDING),
    ],
)
def test_it_judges_a_write_by_the_access_code_status(seam, lock, code, fields, progress):
    code.vendor_code_ref = "ac_1"
    stub_attempt("success")
    stub_code(**fields)

    outcome = seam.command_status(lock, command_for(code))

    assert outcome.progress == progress
    assert outcome.vendor_code_ref == "ac_1"


@responses.activate
@pytest.mark.parametrize(
    ("errors", "reason"),
    [
        (["failed_to_set_on_device", "duplicate_code_on_device"], Reason.DUPLICATE_PIN),
        (["failed_to_set_on_device"], Reason.NACK),
        (["no_space_for_access_code_on_device"], Reason.SLOTS_FULL),
        (["failed_to_set_on_device", "device_offline"], Reason.DEVICE_OFFLINE),
        (["account_disconnected"], Reason.AUTH_FAILED),
        (["smartthings_no_free_slots_available"], Reason.SLOTS_FULL),
        (["something_seam_added_later"], Reason.VENDOR_ERROR),
    ],
)
def test_it_fails_a_write_with_the_reason_the_code_errors_give(seam, lock, code, errors, reason):
    code.vendor_code_ref = "ac_1"
    stub_code(status="setting", errors=[{"error_code": e, "message": f"{e} happened"} for e in errors])

    outcome = seam.command_status(lock, command_for(code, vendor_ref=""))

    assert (outcome.progress, outcome.reason) == (Progress.FAILED, reason)
    assert errors[0] in outcome.detail


@responses.activate
def test_it_takes_a_missing_code_as_removed_for_a_delete_and_not_found_for_a_create(seam, lock, code):
    code.vendor_code_ref = "ac_1"
    stub_code(http_status=404)

    removed = seam.command_status(lock, command_for(code, action="delete", vendor_ref=""))
    lost = seam.command_status(lock, command_for(code, action="create", vendor_ref=""))

    assert removed.progress == Progress.DONE
    assert (lost.progress, lost.reason) == (Progress.FAILED, Reason.NOT_FOUND_ON_DEVICE)


def test_it_cannot_judge_a_command_with_nothing_to_ask_about(seam, lock, code):
    outcome = seam.command_status(lock, command_for(code, vendor_ref=""))

    assert (outcome.progress, outcome.reason) == (Progress.FAILED, Reason.UNRECOGNIZED_JOB_STATE)


# --- reading -----------------------------------------------------------------------------------


@responses.activate
def test_it_reads_managed_and_unmanaged_codes_with_pins_and_windows(seam, lock):
    responses.post(
        f"{BASE}/access_codes/list",
        json={
            "access_codes": [
                access_code(status="set"),
                access_code(access_code_id="ac_2", status="unset", is_scheduled_on_device=True),
                access_code(
                    access_code_id="ac_3", status="removing", type="ongoing", starts_at=None, ends_at=None
                ),
            ],
            "ok": True,
        },
        match=[matchers.json_params_matcher({"device_id": "device_1"})],
    )
    responses.post(
        f"{BASE}/access_codes/unmanaged/list",
        json={
            "access_codes": [
                {
                    "access_code_id": "uac_1",
                    "name": "Cleaner",
                    "code": "1357",
                    "status": "set",
                    "is_managed": False,
                }
            ]
        },
    )

    observed = seam.read_codes(lock)

    assert [(o.vendor_code_ref, o.status, o.managed) for o in observed] == [
        ("ac_1", "set", True),
        ("ac_2", "set", True),
        ("ac_3", "removing", True),
        ("uac_1", "set", False),
    ]
    assert observed[0].pin == PIN
    assert (observed[0].starts_at, observed[0].ends_at) == (STARTS, ENDS)
    assert observed[2].starts_at is None


# --- webhooks ----------------------------------------------------------------------------------


def signed(event, *, message_id="msg_1", at=None, secret=SECRET):
    body = json.dumps(event).encode()
    timestamp = str(int(at if at is not None else time.time()))
    signature = svix_signature(body, secret=secret, message_id=message_id, timestamp=timestamp)
    headers = {"svix-id": message_id, "svix-timestamp": timestamp, "svix-signature": f"v1,{signature}"}
    return body, headers


EVENT = {
    "event_id": "ev_1",
    "event_type": "access_code.set_on_device",
    "access_code_id": "ac_1",
    "device_id": "device_1",
    "code": PIN,
    "occurred_at": "2026-12-01T15:00:03.000Z",
}


def test_it_accepts_a_valid_svix_signature_among_several(seam):
    body, headers = signed(EVENT)
    other = base64.b64encode(b"x" * 32).decode()
    headers["svix-signature"] = f"v1,{other} {headers['svix-signature']} v2,abc"

    seam.verify_webhook(body, {k.upper(): v for k, v in headers.items()})  # header names are case-insensitive


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, headers: (body + b" ", headers), id="body-changed"),
        pytest.param(
            lambda body, headers: (body, {**headers, "svix-signature": "v1,AAAA"}), id="wrong-signature"
        ),
        pytest.param(lambda body, headers: (body, {**headers, "svix-id": "msg_2"}), id="id-changed"),
        pytest.param(
            lambda body, headers: (body, {k: v for k, v in headers.items() if k != "svix-signature"}),
            id="no-signature",
        ),
    ],
)
def test_it_rejects_a_wrong_signature(seam, tamper):
    body, headers = tamper(*signed(EVENT))

    with pytest.raises(WebhookVerificationError):
        seam.verify_webhook(body, headers)


def test_it_rejects_a_signature_made_with_another_secret(seam):
    other_secret = "whsec_" + base64.b64encode(b"someone-else-entirely-0123456789").decode()
    body, headers = signed(EVENT, secret=other_secret)

    with pytest.raises(WebhookVerificationError):
        seam.verify_webhook(body, headers)


@pytest.mark.parametrize("offset", [-301, 301], ids=["stale", "future"])
def test_it_rejects_a_timestamp_outside_five_minutes(seam, offset):
    body, headers = signed(EVENT, at=time.time() + offset)

    with pytest.raises(WebhookVerificationError, match="tolerance"):
        seam.verify_webhook(body, headers)


def test_it_accepts_a_timestamp_inside_five_minutes(seam):
    body, headers = signed(EVENT, at=time.time() - 290)

    seam.verify_webhook(body, headers)


def test_it_rejects_webhooks_when_no_secret_is_configured(seam):
    seam.webhook_secret = ""
    body, headers = signed(EVENT)

    with pytest.raises(WebhookVerificationError):
        seam.verify_webhook(body, headers)


def test_it_gives_a_resent_delivery_the_same_event_id(seam):
    first = signed(EVENT, message_id="msg_42")
    resent = signed(EVENT, message_id="msg_42", at=time.time() + 5)
    other = signed({**EVENT, "event_id": "ev_2"}, message_id="msg_43")

    ids = [seam.webhook_event_id(body, headers) for body, headers in (first, resent, other)]

    assert ids == ["msg_42", "msg_42", "msg_43"]
    assert seam.webhook_event_id(json.dumps(EVENT).encode(), {}) == "ev_1"  # without Svix headers


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("access_code.set_on_device", EventKind.CODE_SET),
        ("access_code.scheduled_on_device", EventKind.CODE_SCHEDULED),
        ("access_code.removed_from_device", EventKind.CODE_REMOVED),
        ("access_code.deleted", EventKind.CODE_REMOVED),
        ("access_code.failed_to_set_on_device", EventKind.CODE_FAILED),
        ("access_code.failed_to_remove_from_device", EventKind.CODE_FAILED),
        ("access_code.delay_in_setting_on_device", EventKind.IGNORED),
        ("access_code.delay_in_removing_from_device", EventKind.IGNORED),
        ("access_code.modified_external_to_seam", EventKind.CODE_CHANGED_EXTERNALLY),
        ("access_code.deleted_external_to_seam", EventKind.CODE_CHANGED_EXTERNALLY),
        ("access_code.created", EventKind.IGNORED),
        ("device.connected", EventKind.DEVICE_ONLINE),
        ("device.disconnected", EventKind.DEVICE_OFFLINE),
        ("device.low_battery", EventKind.BATTERY),
        ("lock.unlocked", EventKind.CODE_USED),  # it names the access code that opened the door
        ("lock.access_denied", EventKind.CODE_DENIED),
        ("something.new", EventKind.IGNORED),
        ("access_code.unmanaged.created", EventKind.UNMANAGED_CODE),
        ("access_code.unmanaged.removed", EventKind.CODE_CHANGED_EXTERNALLY),
        ("device.accessory_keypad_disconnected", EventKind.DEVICE_CONDITION),
        ("device.accessory_keypad_connected", EventKind.DEVICE_CONDITION_CLEARED),
        ("device.tampered", EventKind.DEVICE_CONDITION),
        ("device.third_party_integration_detected", EventKind.DEVICE_CONDITION),
        ("device.error.subscription_required", EventKind.DEVICE_CONDITION),
        ("device.error.subscription_required.resolved", EventKind.DEVICE_CONDITION_CLEARED),
        ("connected_account.disconnected", EventKind.ACCOUNT_DISCONNECTED),
    ],
)
def test_it_parses_each_event_type(seam, event_type, kind):
    body, headers = signed({**EVENT, "event_type": event_type})

    (event,) = seam.parse_webhook(body, headers)

    assert event.kind == kind
    assert event.raw_type == event_type
    assert (event.vendor_event_id, event.vendor_code_ref, event.vendor_device_id) == (
        "ev_1",
        "ac_1",
        "device_1",
    )
    assert event.occurred_at == datetime(2026, 12, 1, 15, 0, 3, tzinfo=UTC)


def test_it_reads_the_failure_reason_from_the_error_lists(seam):
    event = {
        **EVENT,
        "event_type": "access_code.failed_to_set_on_device",
        "access_code_errors": [{"error_code": "failed_to_set_on_device", "message": "no"}],
        "device_errors": [{"error_code": "duplicate_code_on_device", "message": f"{PIN} exists"}],
    }
    body, headers = signed(event)

    (parsed,) = seam.parse_webhook(body, headers)

    assert parsed.reason == Reason.DUPLICATE_PIN
    assert PIN not in parsed.detail
    assert parsed.pin is None


def test_it_defaults_a_failure_without_errors_to_nack(seam):
    body, headers = signed({**EVENT, "event_type": "access_code.failed_to_set_on_device"})

    (parsed,) = seam.parse_webhook(body, headers)

    assert parsed.reason == Reason.NACK


def test_it_reads_pin_battery_and_delay_details(seam):
    set_event = seam.parse_webhook(*signed(EVENT))[0]
    battery = seam.parse_webhook(
        *signed({**EVENT, "event_type": "device.low_battery", "battery_level": 0.12})
    )[0]
    delay = seam.parse_webhook(*signed({**EVENT, "event_type": "access_code.delay_in_setting_on_device"}))[0]

    assert set_event.pin == PIN
    assert battery.battery_level == 0.12
    assert "delay" in delay.detail


@pytest.mark.parametrize(
    ("error_code", "kind"),
    [("account_disconnected", EventKind.ACCOUNT_DISCONNECTED), ("hub_disconnected", EventKind.DEVICE_OFFLINE),
     ("device_disconnected", EventKind.DEVICE_OFFLINE)],
)
def test_it_tells_a_disconnected_account_from_an_offline_device(seam, error_code, kind):
    (event,) = seam.parse_webhook(*signed({**EVENT, "event_type": "device.disconnected", "error_code": error_code}))

    assert event.kind == kind


@pytest.mark.parametrize("body", [b"not json", b'{"no": "type"}', b"[1, 2]"])
def test_it_refuses_a_body_that_is_not_an_event(seam, body):
    with pytest.raises(WebhookVerificationError):
        seam.parse_webhook(body, {})


# --- through the webhook intake ----------------------------------------------------------------


def post_webhook(client, account, body, headers):
    return client.post(
        f"/webhooks/seam/{account.uuid}/", data=body, content_type="application/json", headers=headers
    )


def test_it_stores_a_signed_delivery_once_and_rejects_a_forged_one(client, account):
    body, headers = signed(EVENT, message_id="msg_77")
    forged_body, forged_headers = signed(
        EVENT, message_id="msg_78", secret="whsec_" + base64.b64encode(b"f" * 32).decode()
    )

    first = post_webhook(client, account, body, headers)
    replay = post_webhook(client, account, body, headers)
    forged = post_webhook(client, account, forged_body, forged_headers)

    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert (replay.status_code, replay.json()["duplicate"]) == (200, True)
    assert forged.status_code == 401
    assert list(
        WebhookEvent.objects.filter(provider_account=account).values_list("vendor_event_id", flat=True)
    ) == ["msg_77"]


def test_it_confirms_an_in_flight_create_from_a_set_on_device_webhook(
    client, account, lock, django_capture_on_commit_callbacks
):
    now = timezone.now()
    code = factories.AccessCodeFactory(
        tenant=lock.tenant,
        lock=lock,
        name="Ana Costa",
        pin=PIN,
        status="setting",
        vendor_code_ref="ac_1",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=2),
    )
    command = factories.LockCommandFactory(
        tenant=lock.tenant,
        lock=lock,
        access_code=code,
        action="create",
        state="sent",
        sent_at=datetime(2026, 12, 1, 15, 0, 1, tzinfo=UTC),  # two seconds before the lock reported it
        vendor_ref="aa_1",
    )
    body, headers = signed(EVENT)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, account, body, headers)

    assert response.status_code == 200
    command.refresh_from_db()
    code.refresh_from_db()
    assert command.state == "succeeded"
    assert code.status == "set"


@responses.activate
def test_it_passes_on_retry_after_from_a_503(seam, lock, code):
    responses.post(f"{BASE}/access_codes/create", status=503, headers={"Retry-After": "120"}, body="down")

    with pytest.raises(ProviderError) as caught:
        seam.create_code(lock, code)

    assert (caught.value.reason, caught.value.retry_after) == (Reason.VENDOR_ERROR, 120)
