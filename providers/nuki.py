"""Nuki Web API adapter (VENDORS.md §3): keypad-code authorizations (type 13) on a smart lock.

Nuki answers 204 "correct values and queued" and applies the change on the lock later; the auth list is
"more or less a read only cache" of the lock. So every write is PENDING, and `command_status` reads the
auth list: an auth whose `operationId` is set is still being applied; one without it, carrying the
values we sent, is done. A create has no id until the auth shows up in the list, so we match it by
name + code (both unique per lock for our codes).

Sources beyond VENDORS.md (read through the search tool, Nov 2026):
- HTTP statuses: 402 "Account not payed", 426 "Account upgrade required", 423 "Locked", 409 "Parameter
  conflicts" (rubydoc nuki_api NukiApi::HttpStatusCodes, mirroring the swagger). 402/426 need the
  account owner, so they are auth_failed (permanent, flags the provider account).
- DEVICE_STATUS webhook example: `{feature, smartlockId, state:{batteryCritical, batteryCharge,
  keypadBatteryCritical, …}, serverState, adminPinState}` (docs.nuki.io/guide/webhooks/type-device/).

Arrivals (DEVICE_LOGS): a log entry is the SmartlockLog of the swagger (`{id, smartlockId, deviceType,
accountUserId, authId, name, action, trigger, state, autoUnlock, date}`, action 1 unlock, 3 unlatch;
fields as rendered by a generated client of api.nuki.io, read through the search tool). [I] The webhook
wraps it as `{"feature": "DEVICE_LOGS", "smartlockLog": {…}}`, as DEVICE_AUTHS wraps `smartlockAuth`;
the fields at the top level are accepted too. [I] `authId` names the authorization whose `id` we keep as
the code's ref; a successful (state 0) unlock or unlatch with an `authId` is that code's use.

Webhook event ids: Nuki sends none that is documented, so the id is a SHA-256 of the body in canonical
JSON ("nuki-<hex>"). A resend of the same delivery has the same content and therefore the same id; two
truly identical deliveries (same status twice) collapse into one, which loses nothing. Nuki signs no
timestamp either, so there is no staleness check: replay protection is the stored event id (the intake
drops an id it has seen).

Credentials: {"api_token": "...", "base_url": optional}. "api_key" is accepted as a synonym.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.dateparse import parse_datetime

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
    SentSpec,
    VendorEvent,
    WebhookVerificationError,
    sent_spec,
)
from providers.http import VendorHttp, redact

if TYPE_CHECKING:
    from locks.models import AccessCode, Lock, LockCommand
    from providers.models import ProviderAccount

logger = logging.getLogger(__name__)

KEYPAD_CODE_TYPE = 13
ALL_WEEK_DAYS = 127  # Mon=64 … Sun=1

# Keypad PIN rules (developer.nuki.io/t/…/54; Seam's Nuki guide): 6 digits, no 0, not starting "12".
# Name limit: the swagger says 32, the forum post and Seam say 20; we take the stricter.
REQUIREMENTS: dict[str, Any] = {
    "code_lengths": [6],
    "max_active_codes": 200,  # Smart Lock 3.0+; 100 on 2.0 (seam brand guide)
    "constraints": ["no_zeros", "cannot_start_with_12"],
    "name_max_length": 20,
}

# Statuses whose meaning is Nuki's own (the rest come from providers/http.STATUS_REASONS).
NUKI_STATUS_REASONS: dict[int, Reason] = {
    402: Reason.AUTH_FAILED,  # account not paid
    426: Reason.AUTH_FAILED,  # account upgrade required
}

# Nuki's 400 body names the parameter it rejects: "The supplied value '13' for parameter 'type' is not
# valid". Which parameter says which reason. 'type' rejected means no keypad is paired with the lock.
PARAMETER_REASONS: dict[str, Reason] = {
    "parameter:code": Reason.INVALID_PIN,
    "parameter:name": Reason.INVALID_PIN,
    "parameter:type": Reason.UNSUPPORTED,
    "parameter:allowedFromDate": Reason.SCHEDULE_INVALID,
    "parameter:allowedUntilDate": Reason.SCHEDULE_INVALID,
    "parameter:allowedWeekDays": Reason.SCHEDULE_INVALID,
    "parameter:allowedFromTime": Reason.SCHEDULE_INVALID,
    "parameter:allowedUntilTime": Reason.SCHEDULE_INVALID,
}
WORD_STATUSES = frozenset({400, 422})  # elsewhere the status is exact (409 duplicate, 423 busy, …)
PARAMETER_PATTERN = re.compile(r"parameter '([A-Za-z]+)'")

# serverState (docs.nuki.io/guide/examples): 0 ok, 1 unregistered, 2 auth uuid invalid, 3 auth invalid,
# 4 offline. Only 0 and 4 say anything about being online.
SERVER_STATE_ONLINE: dict[int, bool] = {0: True, 4: False}

MODEL_NAMES: dict[int, str] = {
    0: "Nuki Smart Lock",
    2: "Nuki Opener",
    3: "Nuki Smart Door",
    4: "Nuki Smart Lock 3.0",
}

# Nuki reports a critical battery as a flag; with no charge figure we report this level so the engine's
# low-battery rule fires.
CRITICAL_BATTERY_LEVEL = 0.1

WEBHOOK_SIGNATURE_HEADER = "x-nuki-signature-sha256"
EVENT_ID_PREFIX = "nuki-"


def _error_word(body: Any) -> str:
    message = body.get("detailMessage") if isinstance(body, Mapping) else None
    match = PARAMETER_PATTERN.search(message) if isinstance(message, str) else None
    return f"parameter:{match.group(1)}" if match else ""


def _error_message(body: Any) -> str:
    message = body.get("detailMessage") if isinstance(body, Mapping) else None
    return str(message or "")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _same_instant(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) < 60  # Nuki keeps minutes


def _battery_level(state: Mapping[str, Any]) -> float | None:
    if state.get("batteryCharge") is not None:
        return float(state["batteryCharge"]) / 100
    if state.get("batteryCritical") or state.get("keypadBatteryCritical"):
        return CRITICAL_BATTERY_LEVEL
    return None


def _online(server_state: Any) -> bool | None:
    try:
        return SERVER_STATE_ONLINE.get(int(server_state))
    except (TypeError, ValueError):
        return None


def _keypad_paired(smartlock: Mapping[str, Any]) -> bool:
    """True unless Nuki says no keypad is paired; an absent config is not proof of absence."""
    config = smartlock.get("config")
    if not isinstance(config, Mapping) or ("keypadPaired" not in config and "keypad2Paired" not in config):
        return True
    return bool(config.get("keypadPaired") or config.get("keypad2Paired"))


class NukiProvider(Provider):
    vendor: ClassVar[str] = "nuki"
    default_base_url: ClassVar[str] = "https://api.nuki.io"

    def __init__(self, account: ProviderAccount) -> None:
        super().__init__(account)
        token = str(self.credentials.get("api_token") or self.credentials.get("api_key") or "")
        self.http = VendorHttp(
            vendor=self.vendor,
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=self.timeout,
            token_source=oauth.token_source_for(account),
            secrets=(token, self.webhook_secret),
            error_word=_error_word,
            error_message=_error_message,
            word_reasons=PARAMETER_REASONS,
            status_reasons=NUKI_STATUS_REASONS,
            word_statuses=WORD_STATUSES,
        )

    # --- connection and devices -------------------------------------------------------------------

    def check_connection(self) -> None:
        self.http.json("GET", "/smartlock")

    def list_devices(self) -> list[DeviceInfo]:
        smartlocks = self.http.json("GET", "/smartlock")
        if not isinstance(smartlocks, list):
            raise ProviderError(Reason.VENDOR_ERROR, "Nuki /smartlock did not answer a list")
        return [
            self._device_info(s)
            for s in smartlocks
            if isinstance(s, Mapping) and s.get("smartlockId") is not None and _keypad_paired(s)
        ]

    @staticmethod
    def _device_info(smartlock: Mapping[str, Any]) -> DeviceInfo:
        state = smartlock.get("state") or {}
        return DeviceInfo(
            vendor_device_id=str(smartlock["smartlockId"]),
            name=str(smartlock.get("name") or smartlock["smartlockId"]),
            model=MODEL_NAMES.get(int(smartlock.get("type") or 0), "Nuki"),
            requirements=dict(REQUIREMENTS),
            native_scheduling=True,
            pin_readable=True,
            online=_online(smartlock.get("serverState")),
            battery_level=_battery_level(state),
        )

    # --- codes --------------------------------------------------------------------------------------

    @staticmethod
    def _auth_body(code: AccessCode) -> dict[str, Any]:
        if not code.pin.isdigit():
            raise ProviderError(Reason.INVALID_PIN, "Nuki keypad codes are digits only")
        body: dict[str, Any] = {
            "name": code.name,
            "allowedWeekDays": ALL_WEEK_DAYS,
            "allowedFromTime": 0,
            "allowedUntilTime": 0,
            "code": int(code.pin),
            "type": KEYPAD_CODE_TYPE,
        }
        if code.starts_at:
            body["allowedFromDate"] = _iso(code.starts_at)
        if code.ends_at:
            body["allowedUntilDate"] = _iso(code.ends_at)
        return body

    @staticmethod
    def _summary(endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        summary: dict[str, Any] = {"endpoint": endpoint, **{k: v for k, v in body.items() if k != "code"}}
        if "code" in body:
            summary["code"] = "[redacted]"
        return summary

    def create_code(self, lock: Lock, code: AccessCode) -> Receipt:
        if not code.pin:
            raise ProviderError(Reason.INVALID_PIN, "Nuki keypad codes need a PIN; Nuki does not choose one")
        body = self._auth_body(code)
        endpoint = f"/smartlock/{lock.vendor_device_id}/auth"
        self.http.request("PUT", endpoint, json=body, secrets=(code.pin,))
        return Receipt(
            progress=Progress.PENDING,
            detail="Nuki queued the keypad code; its id appears in the auth list once the lock has it",
            request_summary=self._summary(endpoint, body),
        )

    def update_code(self, lock: Lock, code: AccessCode) -> Receipt:
        auth_id = code.vendor_code_ref or self._find_auth_id(lock, code)
        if not auth_id:
            raise ProviderError(Reason.NOT_FOUND_ON_DEVICE, "no Nuki auth holds this code")
        body = {key: value for key, value in self._auth_body(code).items() if key != "type"}
        body["enabled"] = True
        endpoint = f"/smartlock/{lock.vendor_device_id}/auth/{auth_id}"
        self.http.request("POST", endpoint, json=body, secrets=(code.pin,))
        return Receipt(
            progress=Progress.PENDING, vendor_code_ref=auth_id, request_summary=self._summary(endpoint, body)
        )

    def delete_code(self, lock: Lock, code: AccessCode) -> Receipt:
        auth_id = code.vendor_code_ref or self._find_auth_id(lock, code)
        if not auth_id:
            return Receipt(progress=Progress.DONE, detail="no Nuki auth holds this code: nothing to delete")
        return self.delete_observed_code(lock, auth_id)

    def delete_observed_code(self, lock: Lock, vendor_code_ref: str) -> Receipt:
        endpoint = f"/smartlock/{lock.vendor_device_id}/auth/{vendor_code_ref}"
        try:
            self.http.request("DELETE", endpoint)
        except ProviderError as exc:
            if exc.status_code == 404:
                return Receipt(
                    progress=Progress.DONE,
                    vendor_code_ref=vendor_code_ref,
                    detail="Nuki no longer has this auth (already removed)",
                    request_summary={"endpoint": endpoint},
                )
            raise
        return Receipt(
            progress=Progress.PENDING, vendor_code_ref=vendor_code_ref, request_summary={"endpoint": endpoint}
        )

    # --- auth list ----------------------------------------------------------------------------------

    def _auths(self, lock: Lock) -> list[Mapping[str, Any]]:
        auths = self.http.json(
            "GET", f"/smartlock/{lock.vendor_device_id}/auth", params={"types": KEYPAD_CODE_TYPE}
        )
        if not isinstance(auths, list):
            raise ProviderError(Reason.VENDOR_ERROR, "Nuki auth list is not a list")
        return [
            a
            for a in auths
            if isinstance(a, Mapping) and int(a.get("type", KEYPAD_CODE_TYPE)) == KEYPAD_CODE_TYPE
        ]

    @staticmethod
    def _match(auths: list[Mapping[str, Any]], sent: SentSpec) -> Mapping[str, Any] | None:
        if sent.code_ref:
            by_id = [a for a in auths if str(a.get("id")) == sent.code_ref]
            if by_id:
                return by_id[0]
        for auth in auths:
            if auth.get("name") == sent.name and sent.pin_fingerprint and sent.holds_pin(auth.get("code")):
                return auth
        return None

    def _find_auth_id(self, lock: Lock, code: AccessCode) -> str:
        sent = SentSpec(code.vendor_code_ref, code.name, code.pin_fingerprint, code.starts_at, code.ends_at)
        auth = self._match(self._auths(lock), sent)
        return str(auth["id"]) if auth else ""

    # --- outcomes -----------------------------------------------------------------------------------

    def command_status(self, lock: Lock, command: LockCommand) -> Outcome:
        if command.action == "reload_codes" or command.access_code_id is None:
            return Outcome(progress=Progress.DONE, detail="Nuki answers reads synchronously")
        code = command.access_code
        assert code is not None  # access_code_id is set (checked above)
        sent = sent_spec(command)  # judged by what this command sent, not by a newer edit behind it
        outcome = self._code_outcome(self._match(self._auths(lock), sent), sent, command.action)
        return replace(outcome, detail=redact(outcome.detail, (code.pin,)))

    @staticmethod
    def _code_outcome(auth: Mapping[str, Any] | None, sent: SentSpec, action: str) -> Outcome:
        if action == "delete":
            if auth is None:
                return Outcome(
                    progress=Progress.DONE,
                    vendor_code_ref=sent.code_ref,
                    detail="gone from the auth list",
                )
            return Outcome(
                progress=Progress.PENDING, vendor_code_ref=str(auth["id"]), detail="still in the auth list"
            )
        if auth is None:
            # 204 means queued; the auth appears once the lock has it (minutes, or the daily sync).
            return Outcome(progress=Progress.PENDING, detail="not in the auth list yet")
        auth_id = str(auth["id"])
        if auth.get("operationId"):
            return Outcome(
                progress=Progress.PENDING, vendor_code_ref=auth_id, detail="Nuki operation in progress"
            )
        if auth.get("error"):
            return Outcome(
                progress=Progress.FAILED,
                reason=Reason.NACK,
                vendor_code_ref=auth_id,
                detail=str(auth["error"]),
            )
        applied = (
            sent.holds_pin(auth.get("code"))
            and auth.get("name") == sent.name
            and _same_instant(_parse_time(auth.get("allowedFromDate")), sent.starts_at)
            and _same_instant(_parse_time(auth.get("allowedUntilDate")), sent.ends_at)
        )
        if not applied:
            # Nuki accepted the change (204) but the lock kept other values: the "last write lost" case.
            return Outcome(
                progress=Progress.FAILED,
                reason=Reason.NACK,
                vendor_code_ref=auth_id,
                detail="the lock kept different values than the ones sent",
            )
        return Outcome(
            progress=Progress.DONE, vendor_code_ref=auth_id, detail="in the auth list, no operation pending"
        )

    # --- reading the lock ---------------------------------------------------------------------------

    def reload_codes(self, lock: Lock) -> Receipt:
        endpoint = f"/smartlock/{lock.vendor_device_id}/sync"
        self.http.request("POST", endpoint)
        return Receipt(
            progress=Progress.PENDING, detail="Nuki sync requested", request_summary={"endpoint": endpoint}
        )

    def read_codes(self, lock: Lock) -> list[ObservedCode] | None:
        # Nuki's list is a cache of the lock; ask for a sync first (hass_nuki_ng#215). A failed sync
        # still leaves a usable, if older, list, so it is logged, not raised.
        try:
            self.reload_codes(lock)
        except ProviderError as exc:
            logger.warning("nuki sync before read failed for lock %s: %s", lock.pk, exc.reason)
        return [self._observed(auth) for auth in self._auths(lock)]

    @staticmethod
    def _observed(auth: Mapping[str, Any]) -> ObservedCode:
        status = "setting" if auth.get("operationId") else ("set" if auth.get("enabled", True) else "unknown")
        pin = auth.get("code")
        return ObservedCode(
            vendor_code_ref=str(auth.get("id") or ""),
            name=str(auth.get("name") or ""),
            pin=str(pin) if pin is not None else None,
            starts_at=_parse_time(auth.get("allowedFromDate")),
            ends_at=_parse_time(auth.get("allowedUntilDate")),
            status=status,
            managed=None,
        )

    # --- webhooks (decentral) -----------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        verify_nuki_signature(body, headers, secret=self.webhook_secret)

    def webhook_event_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        return nuki_event_id(body)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[VendorEvent]:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookVerificationError("the Nuki webhook body is not JSON") from exc
        if not isinstance(payload, Mapping) or not payload.get("feature"):
            raise WebhookVerificationError("the Nuki webhook body has no feature")
        parse = FEATURE_PARSERS.get(str(payload["feature"]), _parse_other)
        return parse(payload, nuki_event_id(body))


def nuki_signature(body: bytes, *, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_nuki_signature(body: bytes, headers: Mapping[str, str], *, secret: str) -> None:
    if not secret:
        raise WebhookVerificationError("no webhook secret is configured for this Nuki account")
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    given = lowered.get(WEBHOOK_SIGNATURE_HEADER) or lowered.get("http_x_nuki_signature_sha256") or ""
    if not given:
        raise WebhookVerificationError("missing X-Nuki-Signature-SHA256 header")
    if not hmac.compare_digest(given.strip().lower().encode(), nuki_signature(body, secret=secret).encode()):
        raise WebhookVerificationError("X-Nuki-Signature-SHA256 does not match")


def nuki_event_id(body: bytes) -> str:
    """SHA-256 of the payload in canonical JSON (sorted keys, no spaces), so the id survives the intake
    storing the payload as JSON and re-serializing it; a body that is not JSON is hashed as it came."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return EVENT_ID_PREFIX + hashlib.sha256(canonical).hexdigest()


def _parse_auths(payload: Mapping[str, Any], event_id: str) -> list[VendorEvent]:
    auth = payload.get("smartlockAuth") or {}
    common: dict[str, Any] = {
        "vendor_event_id": event_id,
        "vendor_device_id": str(auth.get("smartlockId") or payload.get("smartlockId") or ""),
        "vendor_code_ref": str(auth.get("id") or ""),
        "raw_type": "DEVICE_AUTHS",
    }
    if int(auth.get("type", KEYPAD_CODE_TYPE)) != KEYPAD_CODE_TYPE:
        return [VendorEvent(kind=EventKind.IGNORED, detail="not a keypad code", **common)]
    if payload.get("deleted"):
        return [VendorEvent(kind=EventKind.CODE_REMOVED, **common)]
    if auth.get("operationId"):
        return [VendorEvent(kind=EventKind.IGNORED, detail="Nuki operation still in progress", **common)]
    pin = auth.get("code")
    return [VendorEvent(kind=EventKind.CODE_SET, pin=str(pin) if pin is not None else None, **common)]


def _parse_status(payload: Mapping[str, Any], event_id: str) -> list[VendorEvent]:
    device_id = str(payload.get("smartlockId") or "")
    state = payload.get("state") or {}
    events: list[VendorEvent] = []
    online = _online(payload.get("serverState"))
    if online is not None:
        kind = EventKind.DEVICE_ONLINE if online else EventKind.DEVICE_OFFLINE
        events.append(
            VendorEvent(
                vendor_event_id=event_id, kind=kind, vendor_device_id=device_id, raw_type="DEVICE_STATUS"
            )
        )
    if state.get("batteryCritical") or state.get("keypadBatteryCritical"):
        which = "lock" if state.get("batteryCritical") else "keypad"
        events.append(
            VendorEvent(
                vendor_event_id=event_id,
                kind=EventKind.BATTERY,
                vendor_device_id=device_id,
                battery_level=_battery_level(state) if which == "lock" else CRITICAL_BATTERY_LEVEL,
                detail=f"{which} battery critical",
                raw_type="DEVICE_STATUS",
            )
        )
    if not events:
        events.append(
            VendorEvent(
                vendor_event_id=event_id,
                kind=EventKind.IGNORED,
                vendor_device_id=device_id,
                raw_type="DEVICE_STATUS",
            )
        )
    return events


def _parse_other(payload: Mapping[str, Any], event_id: str) -> list[VendorEvent]:
    feature = str(payload.get("feature"))
    return [
        VendorEvent(
            vendor_event_id=event_id,
            kind=EventKind.IGNORED,
            vendor_device_id=str(payload.get("smartlockId") or ""),
            detail=f"unhandled Nuki webhook {feature}",
            raw_type=feature,
        )
    ]


UNLOCK_ACTIONS = frozenset({1, 3})  # unlock, unlatch (SmartlockLog.action)


def _parse_logs(payload: Mapping[str, Any], event_id: str) -> list[VendorEvent]:
    entry = payload.get("smartlockLog")
    log = entry if isinstance(entry, Mapping) else payload
    common: dict[str, Any] = {
        "vendor_event_id": event_id,
        "vendor_device_id": str(log.get("smartlockId") or payload.get("smartlockId") or ""),
        "occurred_at": _parse_time(log.get("date")),
        "raw_type": "DEVICE_LOGS",
    }
    auth_id = str(log.get("authId") or "")
    opened = _int(log.get("action")) in UNLOCK_ACTIONS and _int(log.get("state")) == 0
    if auth_id and opened:
        return [VendorEvent(kind=EventKind.CODE_USED, vendor_code_ref=auth_id, **common)]
    return [VendorEvent(kind=EventKind.IGNORED, detail=f"log action {log.get('action')}", **common)]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


FEATURE_PARSERS = {"DEVICE_AUTHS": _parse_auths, "DEVICE_STATUS": _parse_status, "DEVICE_LOGS": _parse_logs}
