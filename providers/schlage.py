"""Schlage Home API v2 (Allegion) adapter: access codes on Encode locks, outcomes by command id.

Credentials (encrypted JSON on the ProviderAccount):
- `token` (alias `access_token`): the OAuth access token (Bearer).
- `subscription_key` (alias `api_key`, as the settings form names it): sent as `alle-subscription-key`,
  the API-management key Allegion's developer portal issues [I: the reference is login-gated].
- `webhook_public_key`: the RSA-2048 public key (PEM) that Schlage signs webhooks with
  (Yonomi/schlage-home-api-v2-webhook-signature README.md publishes it; we never fetch it).
- `base_url` (optional): defaults to https://api.allegion.com/schlage-home.

How it maps (VENDORS.md §4; developer.allegion.com release notes; ownerrez.com "schlage lock integration
debugging"):
- create: PUT /devices/{id}/accesscodes; update: PUT …/accesscodes/{accessCodeId}; delete: DELETE
  …/accesscodes/{accessCodeId}. Each answers 202 with a `commandId`: the receipt is PENDING with
  `vendor_ref` = commandId. The accessCodeId of a new code arrives with the command's outcome
  (GET /devices/{id}/commands/{commandId} or the CommandStatusUpdated webhook), as `vendor_code_ref`.
- Body: {name, code, scheduleType, scheduleDetails:{startDateTime, endDateTime}}; "Temporary" for a
  time-bound code (its window in the property's time zone, ISO 8601 with offset: the lock enforces it,
  so Schlage schedules natively), "Always" for an ongoing one. PINs travel as strings.
- Fixed length: every code on a device has the length of the first one (getting_started_res_access_codes).
  A create or update whose PIN length differs from the codes already on the device fails here with
  invalid_pin, before anything is sent.
- Devices [assumed shape, VENDORS.md §4 and the release notes]: GET /devices returns a JSON array (an
  object with `items`/`devices` is accepted too) of {deviceId, name, model, batteryLevel 0–100,
  connectivityState Online|Offline, accessCodeLength?}. Requirements: lengths 4–8 (or the device's fixed
  length), at most 100 codes, Seam's `unique_first_four_digits` constraint for Schlage.
- Command errors are words in `data.error.errorMessage`; ERROR_MESSAGE_REASONS maps them (operator
  runbook in DESIGN §4 plus OwnerRez's "already in use" / "ID not found on device" split brain).

- Arrivals: `DeviceLockStateChanged` carries `data: {lockState, accessor: {id, friendlyName, accessType}}`
  (VENDORS.md §4, release notes). [I] When `accessType` names an access code, `accessor.id` is that
  code's accessCodeId: an unlock by it is the code's use. Nothing public says so; other accessors (the
  app, a key) are ignored.

Webhook: header `WebHook-Signature` = base64 RSASSA-PSS-SHA256 over the raw UTF-8 body. Assumed event
shape (the public one, plus a command trigger whose `data` is the GET Command object):
  {"eventId", "trigger": "CommandStatusUpdated", "deviceId", "time", "eventType": "DeviceUpdate",
   "data": {"commandId", "state": "Successful"|"Pending"|"Failed"|"Nack", "name": "AddAccessCode",
            "data": {"accessCodeId", "friendlyName", "error": null | {"statusCode", "errorCode",
                     "errorMessage"}}}, "version": "2.0"}
`DeviceConnectivityStateChanged` carries `data.connected` as the STRING "true"/"false"; a
`batteryLevel` in any event's data becomes a BATTERY event. Stale events: `time` older than
EVENT_MAX_AGE (or further than EVENT_MAX_SKEW ahead) is rejected. The window is an hour because Schlage
retries a delivery that was not answered 2xx, and the body (hence `time`) of a retry is the original;
a replay inside the window is dropped by the stored event id (WebhookEvent is unique per account and
vendor event id), and one outside it fails verification.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.utils import timezone

from providers import oauth
from providers.base import (
    DeviceInfo,
    EventKind,
    ObservedCode,
    Outcome,
    Progress,
    Provider,
    ProviderError,
    Reason,
    Receipt,
    VendorEvent,
    WebhookVerificationError,
)
from providers.http import REDACTED, VendorHttp

if TYPE_CHECKING:
    from locks.models import AccessCode, Lock, LockCommand
    from providers.models import ProviderAccount

CODE_LENGTHS = range(4, 9)  # 4–8 digits (getting_started_res_access_codes)
MAX_CODES = 100  # "The Schlage Encode device is limited to one hundred access codes."
EVENT_MAX_AGE = timedelta(hours=1)
EVENT_MAX_SKEW = timedelta(minutes=5)
SIGNATURE_HEADER = "webhook-signature"

# GET Command `state` (compared case-insensitively) → progress. "Nack" is the operator runbook's state
# for a lock that never acknowledged (DESIGN §4; not in public sources): a failure now, retried as a
# transient `nack`, not a command left pending until the 30-minute limit.
COMMAND_STATES: dict[str, Progress] = {
    "successful": Progress.DONE,
    "pending": Progress.PENDING,
    "failed": Progress.FAILED,
    "nack": Progress.FAILED,
}
# A failed state that is its own reason when the command carries no error message.
STATE_REASONS: dict[str, Reason] = {"nack": Reason.NACK}

# errorMessage words → reason; first match wins, case-insensitive, whole words.
ERROR_MESSAGE_REASONS: tuple[tuple[re.Pattern[str], Reason], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        (r"\buser not found in the device\b", Reason.USER_NOT_FOUND),
        (r"\balready in use\b", Reason.DESYNC),  # "Access code/code name are already in use": split brain
        (r"\bnot found on (the )?device\b", Reason.DESYNC),  # "Access code ID not found on device"
        (r"\bschedule parameters are not valid\b", Reason.SCHEDULE_INVALID),
        (r"\bunrecognized job state\b", Reason.UNRECOGNIZED_JOB_STATE),
        (r"\btime(d)?[ -]?out\b", Reason.TIMEOUT),
        (r"\bnack\b", Reason.NACK),
    )
)
UNKNOWN_ERROR_REASON = Reason.VENDOR_ERROR

CONNECTED_KINDS: dict[str, EventKind] = {"true": EventKind.DEVICE_ONLINE, "false": EventKind.DEVICE_OFFLINE}
CONNECTIVITY_ONLINE: dict[str, bool] = {"Online": True, "Offline": False}


def message_reason(message: str) -> Reason:
    for pattern, reason in ERROR_MESSAGE_REASONS:
        if pattern.search(message):
            return reason
    return UNKNOWN_ERROR_REASON


def _error_message(body: Any) -> str:
    """The vendor's words in an error body, wherever Allegion put them."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("errorMessage") or error.get("message") or "")
    return str(body.get("errorMessage") or body.get("message") or error or "")


def _error_word(body: Any) -> str:
    """The runbook phrase an error body contains (a key of WORD_REASONS), or ""."""
    message = _error_message(body)
    for pattern, reason in ERROR_MESSAGE_REASONS:
        if pattern.search(message):
            return reason.value
    return ""


# For synchronous errors the "word" is the reason a runbook phrase maps to.
WORD_REASONS: dict[str, Reason] = {reason.value: reason for _, reason in ERROR_MESSAGE_REASONS}


def _items(answer: Any, *keys: str) -> list[dict[str, Any]]:
    if isinstance(answer, dict):
        answer = next((answer[key] for key in keys if isinstance(answer.get(key), list)), None)
    if not isinstance(answer, list):
        raise ProviderError(Reason.VENDOR_ERROR, "expected a list from Schlage")
    return [item for item in answer if isinstance(item, dict)]


def _object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("UTC"))


def _code_length(code: dict[str, Any]) -> int | None:
    length = code.get("accessCodeLength")
    if isinstance(length, int) and length > 0:
        return length
    pin = code.get("code")
    return len(pin) if isinstance(pin, str) and pin else None


class SchlageProvider(Provider):
    vendor = "schlage"
    default_base_url = "https://api.allegion.com/schlage-home"

    def __init__(self, account: ProviderAccount) -> None:
        super().__init__(account)
        token = str(self.credentials.get("token") or self.credentials.get("access_token") or "")
        # The settings form calls the API-management key `api_key`.
        subscription_key = str(self.credentials.get("subscription_key") or self.credentials.get("api_key") or "")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if subscription_key:
            headers["alle-subscription-key"] = subscription_key
        self.http = VendorHttp(
            vendor=self.vendor,
            base_url=self.base_url,
            headers=headers,
            timeout=self.timeout,
            token_source=oauth.token_source_for(account),
            secrets=(token, subscription_key),
            error_word=_error_word,
            error_message=_error_message,
            word_reasons=WORD_REASONS,
        )

    @staticmethod
    def _path(lock: Lock, *parts: str) -> str:
        return "/".join(["devices", *(quote(part, safe="") for part in (lock.vendor_device_id, *parts))])

    # --- connection and devices
    def check_connection(self) -> None:
        self.http.json("GET", "devices")

    def list_devices(self) -> list[DeviceInfo]:
        return [self._device_info(device) for device in _items(self.http.json("GET", "devices"), "items", "devices")]

    @staticmethod
    def _device_info(device: dict[str, Any]) -> DeviceInfo:
        fixed = device.get("accessCodeLength")
        lengths = [fixed] if isinstance(fixed, int) and fixed in CODE_LENGTHS else list(CODE_LENGTHS)
        battery = device.get("batteryLevel")
        return DeviceInfo(
            vendor_device_id=str(device.get("deviceId") or ""),
            name=str(device.get("name") or device.get("deviceId") or ""),
            model=str(device.get("model") or ""),
            requirements={
                "code_lengths": lengths,
                "max_active_codes": MAX_CODES,
                "constraints": ["unique_first_four_digits"],
            },
            native_scheduling=True,
            pin_readable=True,
            online=CONNECTIVITY_ONLINE.get(str(device.get("connectivityState") or "")),
            battery_level=battery / 100 if isinstance(battery, int | float) else None,
        )

    # --- codes
    def _device_codes(self, lock: Lock) -> list[dict[str, Any]]:
        return _items(self.http.json("GET", self._path(lock, "accesscodes")), "items", "accessCodes")

    def _check_length(self, lock: Lock, code: AccessCode, codes: list[dict[str, Any]]) -> None:
        others = [c for c in codes if str(c.get("accessCodeId") or "") != code.vendor_code_ref]
        lengths = {length for c in others if (length := _code_length(c))}
        if lengths and len(code.pin) not in lengths:
            fixed = ", ".join(str(n) for n in sorted(lengths))
            raise ProviderError(
                Reason.INVALID_PIN,
                f"every code on this lock must have {fixed} digits (fixed by its first code); "
                f"this PIN has {len(code.pin)}",
            )
        if len(code.pin) not in CODE_LENGTHS or not code.pin.isdigit():
            raise ProviderError(Reason.INVALID_PIN, "Schlage codes are 4–8 digits")

    def _body(self, lock: Lock, code: AccessCode) -> dict[str, Any]:
        body: dict[str, Any] = {"name": code.name, "code": code.pin}
        if code.starts_at and code.ends_at:
            zone = ZoneInfo(lock.property.timezone if lock.property else "UTC")
            body["scheduleType"] = "Temporary"
            body["scheduleDetails"] = {
                "startDateTime": code.starts_at.astimezone(zone).isoformat(),
                "endDateTime": code.ends_at.astimezone(zone).isoformat(),
            }
        else:
            body["scheduleType"] = "Always"
        return body

    def _accepted(self, method: str, path: str, *, body: dict[str, Any] | None, pin: str, action: str) -> Receipt:
        answer = self.http.json(method, path, json=body, secrets=(pin,))
        command_id = str(answer.get("commandId") or "") if isinstance(answer, dict) else ""
        if not command_id:
            raise ProviderError(Reason.VENDOR_ERROR, f"{action}: Schlage accepted without a commandId")
        summary: dict[str, Any] = {"method": method, "path": f"/{path}", "action": action}
        if body is not None:
            summary.update({**body, "code": REDACTED})
        return Receipt(
            progress=Progress.PENDING,
            vendor_ref=command_id,
            detail=f"{action} accepted as command {command_id}",
            request_summary=summary,
        )

    def create_code(self, lock: Lock, code: AccessCode) -> Receipt:
        self._check_length(lock, code, self._device_codes(lock))
        body = self._body(lock, code)
        return self._accepted("PUT", self._path(lock, "accesscodes"), body=body, pin=code.pin, action="create")

    def update_code(self, lock: Lock, code: AccessCode) -> Receipt:
        if not code.vendor_code_ref:
            raise ProviderError(Reason.NOT_FOUND_ON_DEVICE, "no Schlage accessCodeId recorded for this code")
        self._check_length(lock, code, self._device_codes(lock))
        path = self._path(lock, "accesscodes", code.vendor_code_ref)
        receipt = self._accepted("PUT", path, body=self._body(lock, code), pin=code.pin, action="update")
        return replace(receipt, vendor_code_ref=code.vendor_code_ref)

    def delete_code(self, lock: Lock, code: AccessCode) -> Receipt:
        ref = code.vendor_code_ref
        if not ref:
            # Sent but the accessCodeId never came back: find it by name, if it is there at all.
            match = next((c for c in self._device_codes(lock) if c.get("name") == code.name), None)
            if match is None:
                return Receipt(progress=Progress.DONE, detail="no access code with this name on the lock")
            ref = str(match.get("accessCodeId") or "")
        return self.delete_observed_code(lock, ref)

    def delete_observed_code(self, lock: Lock, vendor_code_ref: str) -> Receipt:
        path = self._path(lock, "accesscodes", vendor_code_ref)
        receipt = self._accepted("DELETE", path, body=None, pin="", action="delete")
        return replace(receipt, vendor_code_ref=vendor_code_ref)

    def command_status(self, lock: Lock, command: LockCommand) -> Outcome:
        if not command.vendor_ref:
            raise ProviderError(Reason.VENDOR_ERROR, "the command has no Schlage commandId to ask about")
        answer = self.http.json("GET", self._path(lock, "commands", command.vendor_ref))
        if not isinstance(answer, dict):
            raise ProviderError(Reason.VENDOR_ERROR, "command status is not an object")
        return _command_outcome(answer)

    def read_codes(self, lock: Lock) -> list[ObservedCode] | None:
        observed = []
        for code in self._device_codes(lock):
            schedule = _object(code.get("scheduleDetails"))
            observed.append(
                ObservedCode(
                    vendor_code_ref=str(code.get("accessCodeId") or ""),
                    name=str(code.get("name") or ""),
                    pin=str(code["code"]) if code.get("code") is not None else None,
                    starts_at=_parse_time(schedule.get("startDateTime")),
                    ends_at=_parse_time(schedule.get("endDateTime")),
                )
            )
        return observed

    # --- webhooks
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        try:
            signature = base64.b64decode(lowered.get(SIGNATURE_HEADER, ""), validate=True)
        except ValueError as exc:
            raise WebhookVerificationError("WebHook-Signature is not base64") from exc
        if not signature:
            raise WebhookVerificationError("no WebHook-Signature header")
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        try:
            self._public_key().verify(signature, body, pss, hashes.SHA256())
        except InvalidSignature as exc:
            raise WebhookVerificationError("WebHook-Signature does not match the body") from exc
        sent = _parse_time(self._payload(body).get("time"))
        if sent is None:
            raise WebhookVerificationError("event has no readable time")
        now = timezone.now()
        if now - sent > EVENT_MAX_AGE or sent - now > EVENT_MAX_SKEW:
            raise WebhookVerificationError("event time is outside the accepted window")

    def _public_key(self) -> rsa.RSAPublicKey:
        pem = str(self.credentials.get("webhook_public_key") or "").encode()
        if not pem:
            raise WebhookVerificationError("the account has no Schlage webhook public key")
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise WebhookVerificationError("the stored Schlage webhook key is not a PEM public key") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookVerificationError("the stored Schlage webhook key is not RSA")
        return key

    @staticmethod
    def _payload(body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookVerificationError("body is not JSON") from exc
        if not isinstance(payload, dict):
            raise WebhookVerificationError("body is not an event object")
        return payload

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[VendorEvent]:
        payload = self._payload(body)
        data = _object(payload.get("data"))
        trigger = str(payload.get("trigger") or payload.get("eventType") or "")
        base: dict[str, Any] = {
            "vendor_event_id": str(payload.get("eventId") or ""),
            "vendor_device_id": str(payload.get("deviceId") or ""),
            "occurred_at": _parse_time(payload.get("time")),
            "raw_type": trigger,
        }
        parser = EVENT_PARSERS.get(trigger)
        fields = parser(data) if parser else {"kind": EventKind.IGNORED, "detail": trigger}
        events = [VendorEvent(**base, **fields)]
        battery = data.get("batteryLevel")
        if isinstance(battery, int | float) and trigger != "DeviceBatteryLevelChanged":
            events.append(VendorEvent(**base, kind=EventKind.BATTERY, battery_level=battery / 100))
        return events


def _command_outcome(command: dict[str, Any]) -> Outcome:
    state = str(command.get("state") or "")
    data = _object(command.get("data"))
    ref = str(data.get("accessCodeId") or "")
    progress = COMMAND_STATES.get(state.lower(), Progress.PENDING)
    if progress != Progress.FAILED:
        return Outcome(progress=progress, vendor_code_ref=ref, detail=f"{command.get('name', '')} {state}".strip())
    error = _object(data.get("error"))
    message = str(error.get("errorMessage") or error.get("errorMesage") or "")  # sic, release notes
    return Outcome(
        progress=Progress.FAILED,
        reason=message_reason(message) if message else STATE_REASONS.get(state.lower(), UNKNOWN_ERROR_REASON),
        vendor_code_ref=ref,
        detail=f"{command.get('name', '')} failed: {message or 'no message'}"
        + (f" (errorCode {error['errorCode']})" if "errorCode" in error else ""),
    )


def _command_status_updated(data: dict[str, Any]) -> dict[str, Any]:
    nested = data.get("command")
    command = nested if isinstance(nested, dict) else data
    outcome = _command_outcome(command)
    return {
        "kind": OUTCOME_EVENT_KINDS.get(outcome.progress, EventKind.IGNORED),
        "vendor_ref": str(command.get("commandId") or ""),
        "vendor_code_ref": outcome.vendor_code_ref,
        "reason": outcome.reason,
        "detail": outcome.detail,
    }


def _connectivity_changed(data: dict[str, Any]) -> dict[str, Any]:
    connected = str(data.get("connected")).lower()  # the string "true"/"false"
    return {"kind": CONNECTED_KINDS.get(connected, EventKind.IGNORED), "detail": f"connected={connected}"}


def _battery_changed(data: dict[str, Any]) -> dict[str, Any]:
    level = data.get("batteryLevel")
    if not isinstance(level, int | float):
        return {"kind": EventKind.IGNORED, "detail": "no batteryLevel"}
    return {"kind": EventKind.BATTERY, "battery_level": level / 100}


def _lock_state_changed(data: dict[str, Any]) -> dict[str, Any]:
    accessor = _object(data.get("accessor"))
    state = str(data.get("lockState") or "").lower()
    by_code = "code" in str(accessor.get("accessType") or "").lower().replace("_", "")
    if state == "unlocked" and by_code and accessor.get("id"):
        return {"kind": EventKind.CODE_USED, "vendor_code_ref": str(accessor["id"]), "detail": "unlocked by an access code"}
    return {"kind": EventKind.IGNORED, "detail": f"lockState={state or '?'}"}


OUTCOME_EVENT_KINDS: dict[Progress, EventKind] = {
    Progress.DONE: EventKind.COMMAND_SUCCEEDED,
    Progress.FAILED: EventKind.COMMAND_FAILED,
}
# Event `trigger` (or `eventType`) → its VendorEvent fields; anything else is stored, ignored.
EVENT_PARSERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "CommandStatusUpdated": _command_status_updated,
    "DeviceConnectivityStateChanged": _connectivity_changed,
    "DeviceBatteryLevelChanged": _battery_changed,
    "DeviceLockStateChanged": _lock_state_changed,
}
