"""Seam Connect adapter (VENDORS.md §1): access codes over `/access_codes/*`, outcomes from action
attempts and the access code itself, webhooks delivered by Svix.

Sources used to confirm what VENDORS.md marks [I]/[U] (read through the search tool, Nov 2026):
- seamapi/types src/lib/seam/connect/models/capability-properties/access-code.ts: `code_constraints`
  entries are `{constraint_type}` or `{constraint_type: "name_length", min_length, max_length}`.
- seamapi/types .../models/events/devices.ts: `device.low_battery` and `device.battery_status_changed`
  carry `battery_level` (0–1); `device.disconnected` carries `error_code`.
- seamapi/types .../models/action-attempts/common.ts: action attempt `status` is pending|success|error.
- Events that need a person, verified by name and shape in seamapi/types src/lib/seam/connect/models/
  events/: devices.ts has `device.accessory_keypad_disconnected` / `_connected`, `device.tampered`,
  `device.third_party_integration_detected` / `_no_longer_detected`, `device.error.subscription_required`
  / `.resolved`, and `device.disconnected` with `error_code` ∈ account_disconnected | hub_disconnected |
  device_disconnected; access-codes.ts has `access_code.unmanaged.created` / `.removed` (with
  `access_code_id`, `device_id`, `connected_account_id`); connected-accounts.ts has
  `connected_account.disconnected` (with `connected_account_id`, no `device_id`).
  Assumed, not verified: that a webhook registered without an `event_types` filter receives these, that `device.tampered` has no all-clear event
  (none exists in the types), and that one Seam workspace maps to one Lockstep account, so a disconnected
  connected account flags the whole account (`auth_failed`).
- Arrivals: seamapi/types connect/models/events (`lock_unlocked_event`, `lock_access_denied_event`), seen through
  the search tool, and Seam integrators' webhook handlers: `lock.unlocked` (with `method`,
  e.g. "keycode", and `access_code_id` when the lock reports which code opened it) and
  `lock.access_denied` ("denied access after one or more consecutive invalid attempts", optional
  `access_code_id`); an unlock without `access_code_id` (a key, the app) says nothing of a guest's code.
- docs.svix.com/receiving/verifying-payloads/how-manual and svix's own webhook.ts: HMAC-SHA256 over
  "{svix-id}.{svix-timestamp}.{raw body}" keyed by base64-decoded `whsec_` secret, space-separated
  `v1,<base64>` signatures, 5-minute tolerance (WEBHOOK_TOLERANCE_IN_SECONDS = 5 * 60) both ways.
- @seamapi/fake-seam-connect 1.86.0 (run locally): create answers `{access_code, ok}` *without* an action
  attempt, update/delete answer `{action_attempt}`, a repeated PIN is 409 `duplicate_access_code`, an
  unknown code is 404 `access_code_not_found`. So `vendor_ref` may be empty after a create, and
  `command_status` falls back to the access code.

Native scheduling rule: Seam preloads time-bound codes on locks that schedule natively and programs the
rest just in time (lifecycle-of-access-codes.md). Seam exposes no per-device flag for this, so we go by
`properties.manufacturer` against the brands that guide names as natively scheduled
(`NATIVE_SCHEDULING_MANUFACTURERS`), and only when the device can program online codes
(`can_program_online_access_codes` not false). Unknown brands are treated as not native: the engine
then programs them 60 min ahead, which is correct for any lock, only earlier than necessary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.dateparse import parse_datetime

from providers.base import (
    DeviceCondition,
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
from providers.http import VendorHttp, redact

if TYPE_CHECKING:
    from locks.models import AccessCode, Lock, LockCommand
    from providers.models import ProviderAccount

# --- vendor words → reasons (tables, DESIGN §4 / STYLE 6) ---------------------------------------

# `error.type` of an HTTP error body or of a failed action attempt.
SEAM_ERROR_REASONS: dict[str, Reason] = {
    "duplicate_access_code": Reason.DUPLICATE_PIN,
    "duplicate_code_on_device": Reason.DUPLICATE_PIN,
    "duplicate_code_attempt_prevented": Reason.DUPLICATE_PIN,
    "invalid_input": Reason.INVALID_PIN,  # refined by `validation_errors` below
    "invalid_code": Reason.INVALID_PIN,
    "unauthorized": Reason.AUTH_FAILED,
    "forbidden": Reason.AUTH_FAILED,
    "insufficient_permissions": Reason.AUTH_FAILED,
    "account_disconnected": Reason.AUTH_FAILED,
    "not_found": Reason.NOT_FOUND_ON_DEVICE,
    "device_not_found": Reason.NOT_FOUND_ON_DEVICE,
    "access_code_not_found": Reason.NOT_FOUND_ON_DEVICE,
    "device_removed": Reason.NOT_FOUND_ON_DEVICE,
    "device_offline": Reason.DEVICE_OFFLINE,
    "device_disconnected": Reason.DEVICE_OFFLINE,
    "hub_disconnected": Reason.DEVICE_OFFLINE,
    "bridge_disconnected": Reason.DEVICE_OFFLINE,
    "action_attempt_expired": Reason.TIMEOUT,
    "rate_limited": Reason.RATE_LIMITED,
    "too_many_requests": Reason.RATE_LIMITED,
    "no_space_for_access_code_on_device": Reason.SLOTS_FULL,
    "failed_to_set_on_device": Reason.NACK,
    "failed_to_remove_from_device": Reason.NACK,
    "provider_issue": Reason.VENDOR_ERROR,
    "internal_server_error": Reason.VENDOR_ERROR,
    "service_unavailable": Reason.VENDOR_ERROR,
}

# `error_code` of entries in an access code's `errors[]` (and an event's `access_code_errors` /
# `device_errors`). Device and account errors are attached to codes too (access_codes/README.md#errors);
# the older provider-specific codes are still listed in troubleshooting-access-code-issues.md.
ACCESS_CODE_ERROR_REASONS: dict[str, Reason] = {
    "failed_to_set_on_device": Reason.NACK,
    "failed_to_remove_from_device": Reason.NACK,
    "access_code_state_unconfirmed": Reason.NACK,
    "duplicate_code_on_device": Reason.DUPLICATE_PIN,
    "duplicate_code_attempt_prevented": Reason.DUPLICATE_PIN,
    "no_space_for_access_code_on_device": Reason.SLOTS_FULL,
    "code_modified_external_to_seam": Reason.DESYNC,
    "replaced_by_newer_access_code": Reason.DESYNC,
    "access_code_inactive": Reason.SCHEDULE_INVALID,
    "insufficient_permissions": Reason.AUTH_FAILED,
    "salto_ks_user_not_subscribed": Reason.AUTH_FAILED,
    "provider_issue": Reason.VENDOR_ERROR,
    "empty_backup_access_code_pool": Reason.SLOTS_FULL,
    "device_offline": Reason.DEVICE_OFFLINE,
    "device_disconnected": Reason.DEVICE_OFFLINE,
    "hub_disconnected": Reason.DEVICE_OFFLINE,
    "bridge_disconnected": Reason.DEVICE_OFFLINE,
    "device_removed": Reason.NOT_FOUND_ON_DEVICE,
    "account_disconnected": Reason.AUTH_FAILED,
    "invalid_credentials": Reason.AUTH_FAILED,
    "smartthings_failed_to_set_after_multiple_retries": Reason.NACK,
    "smartthings_failed_to_set_access_code": Reason.NACK,
    "smartthings_no_free_slots_available": Reason.SLOTS_FULL,
    "kwikset_unable_to_confirm_code": Reason.NACK,
    "august_device_slots_full": Reason.SLOTS_FULL,
}
UNKNOWN_ERROR_REASON = Reason.VENDOR_ERROR  # Seam says: handle unknown codes with a fallback

# When a code carries several errors, the most specific one names the failure: a duplicate PIN or a
# disconnected account explains a `failed_to_set_on_device`, not the other way round.
REASON_PRECEDENCE: tuple[Reason, ...] = (
    Reason.AUTH_FAILED,
    Reason.DUPLICATE_PIN,
    Reason.SLOTS_FULL,
    Reason.INVALID_PIN,
    Reason.SCHEDULE_INVALID,
    Reason.NOT_FOUND_ON_DEVICE,
    Reason.DEVICE_OFFLINE,
    Reason.DESYNC,
    Reason.NACK,
    Reason.TIMEOUT,
    Reason.VENDOR_ERROR,
)

# `validation_errors` fields of an `invalid_input` 400 that are about the window, not the PIN.
SCHEDULE_FIELDS = frozenset({"starts_at", "ends_at", "type", "max_time_rounding"})

# Seam access code `status` → our ObservedCode.status. `unset` is refined by is_scheduled_on_device.
OBSERVED_STATUS: dict[str, str] = {
    "set": "set",
    "setting": "setting",
    "removing": "removing",
    "unset": "setting",
    "unknown": "unknown",
}

# Progress of a create/update judged from the code's status (no errors, no pending mutations).
WRITE_PROGRESS_BY_STATUS: dict[str, Progress] = {
    "set": Progress.DONE,
    "setting": Progress.PENDING,
    "unset": Progress.PENDING,  # DONE instead when is_scheduled_on_device (preloaded)
    "removing": Progress.PENDING,
    "unknown": Progress.PENDING,
}

ACTION_ATTEMPT_PROGRESS: dict[str, Progress] = {
    "pending": Progress.PENDING,
    "success": Progress.DONE,
    "error": Progress.FAILED,
}

# The brands Seam's lifecycle guide names as natively scheduled ("Schlage, Nuki, August, Yale and
# others"); only the named ones, since the "others" are not listed (see the module docstring).
NATIVE_SCHEDULING_MANUFACTURERS = frozenset({"schlage", "nuki", "august", "yale"})

# Seam constraint types that are rules for the PIN or its window; names keep Seam's spelling, which is
# also ours (locks/pins.py).
NAME_LENGTH_CONSTRAINT = "name_length"
LOCK_CHOOSES_PIN = "cannot_specify_pin_code"

# --- events --------------------------------------------------------------------------------------

EVENT_KINDS: dict[str, EventKind] = {
    "access_code.set_on_device": EventKind.CODE_SET,
    "access_code.scheduled_on_device": EventKind.CODE_SCHEDULED,
    "access_code.removed_from_device": EventKind.CODE_REMOVED,
    "access_code.deleted": EventKind.CODE_REMOVED,
    "access_code.failed_to_set_on_device": EventKind.CODE_FAILED,
    "access_code.failed_to_remove_from_device": EventKind.CODE_FAILED,
    "access_code.modified_external_to_seam": EventKind.CODE_CHANGED_EXTERNALLY,
    "access_code.deleted_external_to_seam": EventKind.CODE_CHANGED_EXTERNALLY,
    "access_code.created": EventKind.IGNORED,
    "access_code.changed": EventKind.IGNORED,
    "access_code.name_changed": EventKind.IGNORED,
    "access_code.code_changed": EventKind.IGNORED,
    "access_code.time_frame_changed": EventKind.IGNORED,
    "access_code.delay_in_setting_on_device": EventKind.IGNORED,
    "access_code.delay_in_removing_from_device": EventKind.IGNORED,
    "access_code.backup_access_code_pulled": EventKind.IGNORED,
    "device.connected": EventKind.DEVICE_ONLINE,
    "device.disconnected": EventKind.DEVICE_OFFLINE,
    "device.removed": EventKind.DEVICE_OFFLINE,
    "device.deleted": EventKind.DEVICE_OFFLINE,
    "device.low_battery": EventKind.BATTERY,
    "device.battery_status_changed": EventKind.BATTERY,
    "device.connection_became_flaky": EventKind.IGNORED,
    "lock.unlocked": EventKind.CODE_USED,  # only with access_code_id (parse_event)
    "lock.locked": EventKind.IGNORED,
    "lock.access_denied": EventKind.CODE_DENIED,
    "device.connection_stabilized": EventKind.IGNORED,
    # Events that need a person (verified: seamapi/types models/events/*.ts; see the module docstring).
    "access_code.unmanaged.created": EventKind.UNMANAGED_CODE,
    "access_code.unmanaged.removed": EventKind.CODE_CHANGED_EXTERNALLY,  # a read tells what is left
    "device.accessory_keypad_disconnected": EventKind.DEVICE_CONDITION,
    "device.accessory_keypad_connected": EventKind.DEVICE_CONDITION_CLEARED,
    "device.tampered": EventKind.DEVICE_CONDITION,
    "device.third_party_integration_detected": EventKind.DEVICE_CONDITION,
    "device.third_party_integration_no_longer_detected": EventKind.DEVICE_CONDITION_CLEARED,
    "device.error.subscription_required": EventKind.DEVICE_CONDITION,
    "device.error.subscription_required.resolved": EventKind.DEVICE_CONDITION_CLEARED,
    "connected_account.disconnected": EventKind.ACCOUNT_DISCONNECTED,
}

# The condition a DEVICE_CONDITION(_CLEARED) event is about.
EVENT_CONDITIONS: dict[str, DeviceCondition] = {
    "device.accessory_keypad_disconnected": DeviceCondition.KEYPAD_DISCONNECTED,
    "device.accessory_keypad_connected": DeviceCondition.KEYPAD_DISCONNECTED,
    "device.tampered": DeviceCondition.TAMPERED,
    "device.third_party_integration_detected": DeviceCondition.THIRD_PARTY_INTEGRATION,
    "device.third_party_integration_no_longer_detected": DeviceCondition.THIRD_PARTY_INTEGRATION,
    "device.error.subscription_required": DeviceCondition.SUBSCRIPTION_REQUIRED,
    "device.error.subscription_required.resolved": DeviceCondition.SUBSCRIPTION_REQUIRED,
}

# `device.disconnected` carries `error_code` (account_disconnected | hub_disconnected | device_disconnected,
# seamapi/types devices.ts): a device that went offline because its connected account (the brand's own
# login) was disconnected needs the account reconnected, not the lock looked at.
ACCOUNT_DISCONNECTED_ERROR = "account_disconnected"  # also a device `errors[].error_code` (VENDORS.md §1)
DISCONNECT_KINDS: dict[str, EventKind] = {ACCOUNT_DISCONNECTED_ERROR: EventKind.ACCOUNT_DISCONNECTED}

EVENT_DETAILS: dict[str, str] = {
    "access_code.delay_in_setting_on_device": "Seam reports a delay setting the code on the lock; it keeps trying",
    "access_code.delay_in_removing_from_device": "Seam reports a delay removing the code from the lock; it keeps trying",
    "access_code.modified_external_to_seam": "The code was changed on the lock outside Seam",
    "access_code.deleted_external_to_seam": "The code was deleted on the lock outside Seam",
    "access_code.backup_access_code_pulled": "Seam pulled a backup code for this code",
    "device.removed": "The lock was removed from the Seam account",
    "device.deleted": "The lock was deleted in Seam",
    "device.connection_became_flaky": "Seam reports a flaky connection to the lock",
    "device.connection_stabilized": "Seam reports the lock's connection is stable again",
    "access_code.unmanaged.created": "A code was added on the lock outside Lockstep",
    "access_code.unmanaged.removed": "A code not managed by Lockstep was removed from the lock",
    "device.accessory_keypad_disconnected": "Seam reports the lock's keypad disconnected",
    "device.accessory_keypad_connected": "Seam reports the lock's keypad connected again",
    "device.tampered": "Seam reports the lock detected tampering (opened or moved)",
    "device.third_party_integration_detected": "Seam detected another integration that interferes with code management",
    "device.third_party_integration_no_longer_detected": "Seam no longer detects the interfering integration",
    "device.error.subscription_required": "The lock brand requires a subscription for code management",
    "device.error.subscription_required.resolved": "The lock brand's subscription is active again",
    "connected_account.disconnected": "Seam reports the lock brand's account (its connected account) disconnected",
}

# Events whose failure reason comes from the attached error lists, with this default.
EVENT_DEFAULT_REASONS: dict[str, Reason] = {
    "access_code.failed_to_set_on_device": Reason.NACK,
    "access_code.failed_to_remove_from_device": Reason.NACK,
}

WEBHOOK_TOLERANCE_SECONDS = 5 * 60  # Svix's own WEBHOOK_TOLERANCE_IN_SECONDS
SVIX_SECRET_PREFIX = "whsec_"
# Svix allows white-labelled `webhook-*` headers (Standard Webhooks); accept both spellings.
SVIX_HEADER_PREFIXES = ("svix-", "webhook-")
MAX_PAGES = 50  # guard against a cursor that never ends

PREFERRED_CODE_LENGTH = 6


def _error_word(body: Any) -> str:
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return ""
    word = str(error.get("type") or "")
    if word == "invalid_input" and _validation_fields(error) & SCHEDULE_FIELDS:
        return "invalid_input.schedule"
    return word


def _error_message(body: Any) -> str:
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return ""
    return str(error.get("message") or "")  # never the stack trace the fake adds


def _validation_fields(error: Mapping[str, Any]) -> set[str]:
    fields: set[str] = set()
    validation = error.get("validation_errors")
    if isinstance(validation, Mapping):
        fields.update(str(k) for k in validation if k != "_errors")
    return fields


HTTP_WORD_REASONS: dict[str, Reason] = {
    **SEAM_ERROR_REASONS,
    "invalid_input.schedule": Reason.SCHEDULE_INVALID,
}


def reason_for_errors(errors: Any, *, default: Reason | None = None) -> tuple[Reason | None, str]:
    """The one reason a list of Seam errors amounts to, and their words for vendor_detail."""
    entries = [e for e in (errors or ()) if isinstance(e, Mapping)]
    if not entries:
        return default, ""
    reasons = [
        ACCESS_CODE_ERROR_REASONS.get(str(e.get("error_code") or e.get("type") or ""), UNKNOWN_ERROR_REASON)
        for e in entries
    ]
    best = min(
        reasons,
        key=lambda r: REASON_PRECEDENCE.index(r) if r in REASON_PRECEDENCE else len(REASON_PRECEDENCE),
    )
    words = "; ".join(
        f"{e.get('error_code') or e.get('type')}: {e.get('message', '')}".rstrip(": ") for e in entries
    )
    return best, words


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _code_requirements(properties: Mapping[str, Any]) -> dict[str, Any]:
    requirements: dict[str, Any] = {}
    lengths = properties.get("supported_code_lengths")
    if lengths:
        requirements["code_lengths"] = sorted(int(n) for n in lengths)
    if properties.get("max_active_codes_supported") is not None:
        requirements["max_active_codes"] = int(properties["max_active_codes_supported"])
    constraints: list[str] = []
    for entry in properties.get("code_constraints") or ():
        kind = entry.get("constraint_type") if isinstance(entry, Mapping) else None
        if not kind:
            continue
        if kind == NAME_LENGTH_CONSTRAINT:
            if entry.get("max_length") is not None:
                requirements["name_max_length"] = int(entry["max_length"])
            if entry.get("min_length") is not None:
                requirements["name_min_length"] = int(entry["min_length"])
        constraints.append(str(kind))
    requirements["constraints"] = constraints
    return requirements


def _constraint_names(requirements: Mapping[str, Any]) -> set[str]:
    names = set()
    for entry in requirements.get("constraints") or ():
        name = entry.get("constraint_type") if isinstance(entry, Mapping) else entry
        if isinstance(name, str):
            names.add(name)
    return names


def _battery(properties: Mapping[str, Any]) -> float | None:
    level = properties.get("battery_level")
    if level is None and isinstance(properties.get("battery"), Mapping):
        level = properties["battery"].get("level")
    return float(level) if level is not None else None


class SeamProvider(Provider):
    vendor: ClassVar[str] = "seam"
    default_base_url: ClassVar[str] = "https://connect.getseam.com"

    def __init__(self, account: ProviderAccount) -> None:
        super().__init__(account)
        api_key = str(self.credentials.get("api_key") or "")
        self.http = VendorHttp(
            vendor=self.vendor,
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=self.timeout,
            secrets=(api_key, self.webhook_secret),
            error_word=_error_word,
            error_message=_error_message,
            word_reasons=HTTP_WORD_REASONS,
        )

    # --- connection and devices -------------------------------------------------------------------

    def check_connection(self) -> None:
        self.http.json("POST", "/devices/list", json={"limit": 1})

    def list_devices(self) -> list[DeviceInfo]:
        return [
            self._device_info(d) for d in self._paged("/devices/list", "devices", {}) if self._has_codes(d)
        ]

    @staticmethod
    def _has_codes(device: Mapping[str, Any]) -> bool:
        if not device.get("device_id"):
            return False
        capabilities = device.get("capabilities_supported")
        return capabilities is None or "access_code" in capabilities

    def _device_info(self, device: Mapping[str, Any]) -> DeviceInfo:
        properties = device.get("properties") or {}
        appearance = properties.get("appearance") or {}
        model = properties.get("model") or {}
        manufacturer = str(properties.get("manufacturer") or "").lower()
        can_program = device.get(
            "can_program_online_access_codes", properties.get("can_program_online_access_codes")
        )
        return DeviceInfo(
            vendor_device_id=str(device["device_id"]),
            name=str(
                appearance.get("name")
                or properties.get("name")
                or device.get("display_name")
                or device["device_id"]
            ),
            model=" ".join(
                filter(None, [manufacturer.title(), str(model.get("display_name") or "")])
            ).strip(),
            requirements=_code_requirements(properties),
            native_scheduling=manufacturer in NATIVE_SCHEDULING_MANUFACTURERS and can_program is not False,
            pin_readable=True,
            online=properties.get("online"),
            battery_level=_battery(properties),
            account_disconnected=any(
                isinstance(error, Mapping) and error.get("error_code") == ACCOUNT_DISCONNECTED_ERROR
                for error in device.get("errors") or ()
            ),
        )

    def _paged(self, path: str, key: str, body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = self.http.json("POST", path, json={**body, **({"page_cursor": cursor} if cursor else {})})
            items = page.get(key) if isinstance(page, Mapping) else None
            if not isinstance(items, list):
                raise ProviderError(Reason.VENDOR_ERROR, f"Seam {path} answered without {key!r}")
            yield from (item for item in items if isinstance(item, Mapping))
            pagination = page.get("pagination") or {}
            cursor = pagination.get("next_page_cursor") if pagination.get("has_next_page") else None
            if not cursor:
                return

    # --- codes --------------------------------------------------------------------------------------

    def _code_body(self, lock: Lock, code: AccessCode) -> dict[str, Any]:
        body: dict[str, Any] = {"name": code.name}
        if code.pin and LOCK_CHOOSES_PIN not in _constraint_names(lock.requirements or {}):
            body["code"] = code.pin
        else:
            lengths = (lock.requirements or {}).get("code_lengths") or []
            if lengths:
                body["preferred_code_length"] = (
                    PREFERRED_CODE_LENGTH if PREFERRED_CODE_LENGTH in lengths else max(lengths)
                )
        if code.starts_at or code.ends_at:
            body.update(
                {k: v for k, v in (("starts_at", _iso(code.starts_at)), ("ends_at", _iso(code.ends_at))) if v}
            )
        if code.common_code_key:
            body["common_code_key"] = code.common_code_key
        return body

    @staticmethod
    def _summary(body: Mapping[str, Any]) -> dict[str, Any]:
        summary = {k: v for k, v in body.items() if k != "code"}
        if "code" in body:
            summary["code"] = "[redacted]"
        return summary

    def create_code(self, lock: Lock, code: AccessCode) -> Receipt:
        body = {"device_id": lock.vendor_device_id, **self._code_body(lock, code)}
        answer = self.http.json("POST", "/access_codes/create", json=body, secrets=(code.pin,))
        access_code = answer.get("access_code") or {}
        access_code_id = str(access_code.get("access_code_id") or "")
        if not access_code_id:
            raise ProviderError(Reason.VENDOR_ERROR, "Seam accepted the code but returned no access_code_id")
        chose_pin = "code" not in body
        return Receipt(
            progress=Progress.PENDING,
            vendor_ref=str((answer.get("action_attempt") or {}).get("action_attempt_id") or ""),
            vendor_code_ref=access_code_id,
            pin=str(access_code.get("code") or "") if chose_pin else "",
            detail=f"Seam status {access_code.get('status') or 'unknown'}",
            request_summary={
                "endpoint": "/access_codes/create",
                **self._summary(body),
                "access_code_id": access_code_id,
            },
        )

    def update_code(self, lock: Lock, code: AccessCode) -> Receipt:
        if not code.vendor_code_ref:
            raise ProviderError(Reason.NOT_FOUND_ON_DEVICE, "this code has no Seam access_code_id to update")
        body = {"access_code_id": code.vendor_code_ref, **self._code_body(lock, code)}
        if not (code.starts_at or code.ends_at):
            body["type"] = "ongoing"
        answer = self.http.json("POST", "/access_codes/update", json=body, secrets=(code.pin,))
        return self._action_receipt(answer, code.vendor_code_ref, "/access_codes/update", body)

    def delete_code(self, lock: Lock, code: AccessCode) -> Receipt:
        if not code.vendor_code_ref:
            return Receipt(progress=Progress.DONE, detail="never created at Seam: nothing to delete")
        return self.delete_observed_code(lock, code.vendor_code_ref)

    def delete_observed_code(self, lock: Lock, vendor_code_ref: str) -> Receipt:
        body = {"access_code_id": vendor_code_ref}
        try:
            answer = self.http.json("POST", "/access_codes/delete", json=body)
        except ProviderError as exc:
            if exc.status_code == 404:  # Seam deletes removed codes: gone already is what we wanted
                return Receipt(
                    progress=Progress.DONE,
                    vendor_code_ref=vendor_code_ref,
                    detail="Seam no longer knows this code (already removed)",
                    request_summary={"endpoint": "/access_codes/delete", **body},
                )
            raise
        return self._action_receipt(answer, vendor_code_ref, "/access_codes/delete", body)

    def _action_receipt(
        self, answer: Any, access_code_id: str, endpoint: str, body: Mapping[str, Any]
    ) -> Receipt:
        attempt = (answer.get("action_attempt") if isinstance(answer, Mapping) else None) or {}
        progress = ACTION_ATTEMPT_PROGRESS.get(str(attempt.get("status") or "pending"), Progress.PENDING)
        reason, words = self._attempt_failure(attempt) if progress == Progress.FAILED else (None, "")
        if reason is not None:
            raise ProviderError(reason, words)
        return Receipt(
            progress=Progress.PENDING
            if progress == Progress.DONE and endpoint != "/access_codes/delete"
            else progress,
            vendor_ref=str(attempt.get("action_attempt_id") or ""),
            vendor_code_ref=access_code_id,
            request_summary={"endpoint": endpoint, **self._summary(body)},
        )

    @staticmethod
    def _attempt_failure(attempt: Mapping[str, Any]) -> tuple[Reason, str]:
        error = attempt.get("error") or {}
        word = str(error.get("type") or "")
        reason = SEAM_ERROR_REASONS.get(word) or ACCESS_CODE_ERROR_REASONS.get(word) or UNKNOWN_ERROR_REASON
        return reason, f"{word}: {error.get('message') or ''}".rstrip(": ")

    # --- outcomes -----------------------------------------------------------------------------------

    def command_status(self, lock: Lock, command: LockCommand) -> Outcome:
        outcome = self._command_outcome(command)
        code = command.access_code  # None, without a query, when the command is about no code
        pin = code.pin if code is not None else ""
        return replace(outcome, detail=redact(outcome.detail, (pin,)))

    def _command_outcome(self, command: LockCommand) -> Outcome:
        is_delete = command.action in ("delete", "remove_code")
        if command.action not in ("create", "update", "delete", "remove_code"):
            return Outcome(progress=Progress.DONE, detail="Seam answers reads synchronously")
        code = command.access_code  # None, without a query, when the command is about no code
        access_code_id = (code.vendor_code_ref if code is not None else command.target_ref) or str(
            (command.request_summary or {}).get("access_code_id") or ""
        )
        if command.vendor_ref:
            outcome = self._attempt_outcome(command.vendor_ref, access_code_id, is_delete)
            if outcome is not None:
                return outcome
        if not access_code_id:
            return Outcome(
                progress=Progress.FAILED,
                reason=Reason.UNRECOGNIZED_JOB_STATE,
                detail="no Seam action attempt or access code to ask about",
            )
        return self._code_outcome(access_code_id, is_delete)

    def _attempt_outcome(
        self, action_attempt_id: str, access_code_id: str, is_delete: bool
    ) -> Outcome | None:
        """The outcome when the action attempt decides it; None when the code must be asked."""
        try:
            answer = self.http.json(
                "POST", "/action_attempts/get", json={"action_attempt_id": action_attempt_id}
            )
        except ProviderError as exc:
            if exc.status_code == 404:
                return None
            raise
        attempt = answer.get("action_attempt") or {}
        progress = ACTION_ATTEMPT_PROGRESS.get(str(attempt.get("status") or ""))
        if progress == Progress.FAILED:
            reason, words = self._attempt_failure(attempt)
            return Outcome(
                progress=Progress.FAILED, reason=reason, vendor_code_ref=access_code_id, detail=words
            )
        if progress == Progress.DONE and is_delete:
            return Outcome(
                progress=Progress.DONE, vendor_code_ref=access_code_id, detail="Seam deleted the code"
            )
        if progress == Progress.PENDING and not access_code_id:
            return Outcome(progress=Progress.PENDING, detail="Seam action attempt pending")
        return None

    def _code_outcome(self, access_code_id: str, is_delete: bool) -> Outcome:
        try:
            answer = self.http.json("POST", "/access_codes/get", json={"access_code_id": access_code_id})
        except ProviderError as exc:
            if exc.status_code != 404:
                raise
            # Seam deletes a code once it is removed from the lock, so /get answers 404 (lifecycle guide).
            if is_delete:
                return Outcome(
                    progress=Progress.DONE, vendor_code_ref=access_code_id, detail="removed (Seam: not found)"
                )
            return Outcome(
                progress=Progress.FAILED,
                reason=Reason.NOT_FOUND_ON_DEVICE,
                vendor_code_ref=access_code_id,
                detail=exc.vendor_detail,
            )
        access_code = answer.get("access_code") or {}
        reason, words = reason_for_errors(access_code.get("errors"))
        if reason is not None and reason != Reason.DESYNC:
            return Outcome(
                progress=Progress.FAILED, reason=reason, vendor_code_ref=access_code_id, detail=words
            )
        status = str(access_code.get("status") or "unknown")
        if is_delete:
            return Outcome(
                progress=Progress.PENDING, vendor_code_ref=access_code_id, detail=f"Seam status {status}"
            )
        if access_code.get("pending_mutations"):
            return Outcome(
                progress=Progress.PENDING, vendor_code_ref=access_code_id, detail="Seam has pending changes"
            )
        progress = WRITE_PROGRESS_BY_STATUS.get(status, Progress.PENDING)
        if status == "unset" and access_code.get("is_scheduled_on_device"):
            progress = Progress.DONE
        detail = f"Seam status {status}" + (
            " (scheduled on device)" if access_code.get("is_scheduled_on_device") else ""
        )
        return Outcome(progress=progress, vendor_code_ref=access_code_id, detail=detail)

    # --- reading the lock ---------------------------------------------------------------------------

    def read_codes(self, lock: Lock) -> list[ObservedCode] | None:
        body = {"device_id": lock.vendor_device_id}
        managed = [
            self._observed(c, managed=True) for c in self._paged("/access_codes/list", "access_codes", body)
        ]
        unmanaged = [
            self._observed(c, managed=False)
            for c in self._paged("/access_codes/unmanaged/list", "access_codes", body)
        ]
        return managed + unmanaged

    @staticmethod
    def _observed(access_code: Mapping[str, Any], *, managed: bool) -> ObservedCode:
        status = str(access_code.get("status") or "unknown")
        observed_status = OBSERVED_STATUS.get(status, "unknown")
        if status == "unset" and access_code.get("is_scheduled_on_device"):
            observed_status = "set"  # preloaded on a natively scheduling lock
        pin = access_code.get("code")
        return ObservedCode(
            vendor_code_ref=str(access_code.get("access_code_id") or ""),
            name=str(access_code.get("name") or ""),
            pin=str(pin) if pin is not None else None,
            starts_at=_parse_time(access_code.get("starts_at")),
            ends_at=_parse_time(access_code.get("ends_at")),
            status=observed_status,
            managed=bool(access_code.get("is_managed", managed)),
        )

    # --- webhooks (Svix) ----------------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        verify_svix(body, headers, secret=self.webhook_secret, now=time.time())

    def webhook_event_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        message_id = _svix_header(headers, "id")
        if message_id:
            return message_id
        return str(_event_object(body).get("event_id") or "")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[VendorEvent]:
        return [parse_event(_event_object(body))]


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _svix_header(headers: Mapping[str, str], name: str) -> str:
    lowered = _lowered(headers)
    for prefix in SVIX_HEADER_PREFIXES:
        value = lowered.get(f"{prefix}{name}") or lowered.get(f"http_{prefix}{name}".replace("-", "_"))
        if value:
            return value
    return ""


def _svix_key(secret: str) -> bytes:
    encoded = secret[len(SVIX_SECRET_PREFIX) :] if secret.startswith(SVIX_SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the Seam webhook secret is not a valid whsec_ secret") from exc


def svix_signature(body: bytes, *, secret: str, message_id: str, timestamp: str) -> str:
    """The `v1` signature Svix puts on a delivery (also used by tests to sign payloads)."""
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(_svix_key(secret), signed, hashlib.sha256).digest()).decode()


def verify_svix(body: bytes, headers: Mapping[str, str], *, secret: str, now: float) -> None:
    if not secret:
        raise WebhookVerificationError("no webhook secret is configured for this Seam account")
    message_id = _svix_header(headers, "id")
    timestamp = _svix_header(headers, "timestamp")
    signatures = _svix_header(headers, "signature")
    if not (message_id and timestamp and signatures):
        raise WebhookVerificationError("missing svix-id, svix-timestamp or svix-signature header")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("svix-timestamp is not a number") from exc
    if abs(now - sent_at) > WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookVerificationError("svix-timestamp is outside the 5-minute tolerance (stale or future)")
    expected = svix_signature(body, secret=secret, message_id=message_id, timestamp=timestamp).encode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return
    raise WebhookVerificationError("no svix-signature matches")


def _event_object(body: bytes) -> Mapping[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookVerificationError("the Seam webhook body is not JSON") from exc
    if isinstance(payload, Mapping) and isinstance(payload.get("event"), Mapping):
        payload = payload["event"]  # tolerate an envelope; Seam posts the event itself
    if not isinstance(payload, Mapping) or not payload.get("event_type"):
        raise WebhookVerificationError("the Seam webhook body is not an event")
    return payload


def parse_event(event: Mapping[str, Any]) -> VendorEvent:
    """One Seam event → one VendorEvent; unknown types are IGNORED, never an error."""
    event_type = str(event.get("event_type") or "")
    kind = EVENT_KINDS.get(event_type, EventKind.IGNORED)
    if kind == EventKind.DEVICE_OFFLINE:
        kind = DISCONNECT_KINDS.get(str(event.get("error_code") or ""), kind)
    reason = ""
    detail = EVENT_DETAILS.get(
        event_type, "" if event_type in EVENT_KINDS else f"unhandled Seam event {event_type}"
    )
    if kind == EventKind.CODE_FAILED:
        errors = [*(event.get("access_code_errors") or ()), *(event.get("device_errors") or ())]
        found, words = reason_for_errors(errors, default=EVENT_DEFAULT_REASONS.get(event_type, Reason.NACK))
        reason, detail = str(found), words or event_type
    elif kind == EventKind.DEVICE_OFFLINE and event.get("error_code"):
        detail = str(event["error_code"])
    elif kind == EventKind.CODE_USED and not event.get("access_code_id"):
        kind, detail = EventKind.IGNORED, f"unlocked ({event.get('method') or 'no code named'})"
    elif kind == EventKind.ACCOUNT_DISCONNECTED and not detail:
        detail = EVENT_DETAILS["connected_account.disconnected"]
    pin = event.get("code")
    detail = redact(detail, (str(pin) if pin is not None else "",))
    battery = event.get("battery_level")
    return VendorEvent(
        vendor_event_id=str(event.get("event_id") or ""),
        kind=kind,
        vendor_device_id=str(event.get("device_id") or ""),
        vendor_ref=str(event.get("action_attempt_id") or ""),
        vendor_code_ref=str(event.get("access_code_id") or ""),
        reason=reason,
        pin=str(pin) if (pin is not None and kind == EventKind.CODE_SET) else None,
        battery_level=float(battery) if battery is not None else None,
        occurred_at=_parse_time(event.get("occurred_at")) or _parse_time(event.get("created_at")),
        detail=detail,
        raw_type=event_type,
        condition=EVENT_CONDITIONS.get(event_type, ""),
    )
