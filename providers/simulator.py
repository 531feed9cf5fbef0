"""The simulator: a vendor cloud and its locks, persisted in our own database (DESIGN §5).

It implements the whole provider contract, so the engine cannot tell it from a real vendor, and it is
the embedded default for the demo and for `manage.py simulate`.

**Profiles** (`PROFILES`, data): four vendor-like behaviours —
- `seam`: native scheduling (a code sent before its window is preloaded, then becomes active at
  `starts_at`; the lock drops it on its own a little after `ends_at`), access code ids, action attempts;
  events name the access code only.
- `smartthings`: numbered slots 1..max_active_codes, no native scheduling, PINs not readable; a PIN the
  lock already holds comes back as "<other slot> failed"; a second operation while one is running is
  answered `busy`.
- `nuki`: 6 digits from 1–9, not starting with 12 (400 otherwise), 409 for a PIN already on the lock, 423
  while an operation on the same authorization runs; webhooks carry the request id.
- `schlage`: every write answers 202 with a commandId; every code on a lock has the length of the first
  one; "Access code/code name are already in use" and "Access code ID not found on device" (split brain).

**Time.** The simulator never reads a clock of its own to finish work: operations are stamped with
`timezone.now()` when the engine calls (under `manage.py simulate` that is the virtual clock) and complete
when `simulator_advance(account=…, now=…)` is called with a `now` at or past their due time. Completions,
and the lock's own schedule changes, are delivered as webhooks through `providers.webhooks.webhook_ingest`,
the same path real vendors use.

**Faults** (knobs, probabilities 0–1 except `latency` in seconds; from the device's `faults`, else the
account credentials' `faults`, else zero): `latency` (mean seconds until an operation completes, drawn
0.5–1.5×), `timeout` (the operation never completes), `nack` (the lock never acknowledges: it fails),
`lost_webhook`, `duplicate_webhook` (delivered twice, same event id, as vendors resend), `reorder_webhook`
(delivered 1–5 minutes late, so later events overtake it), `desync` (the vendor reports success but the
lock lost the new code / kept the deleted one), `busy` (the call is refused: busy / 423), `external_pin`
(someone sets a PIN at the keypad; half the time it is the very PIN being sent).

**Early exposure**: a lock without native scheduling opens for a code from the moment it holds it; each such
code's longest time live before its window is kept in the device's `stats["early_exposure"]`.

**Arrivals.** Most guests "arrive": a time-bound code the lock holds is typed at the door some time after
its window starts (`ARRIVAL_CHANCE`, `ARRIVAL_AFTER`), and the lock reports which code opened it as each
vendor does (`lock.unlocked` with the code, Nuki's log, Schlage's lock state with its accessor). Arrivals
draw from a stream of their own (seeded by the code), so a run's operations tell the same story with or
without them.

**Answers and interleaving** (account credentials, for `manage.py simulate --workers`): `answer_ms` — every
write (create, update, delete) is answered that many real milliseconds after the cloud accepted it, so a completion (and its webhook)
can overtake the answer; `interleave` (0–1) — the chance that the webhooks a lock delivers together come in
an order mixing its codes (each code's own events keep their order). Neither draws from the seeded streams
below, so a run without them tells the same story as before. A call that arrives while another operation is
pending on the lock is counted in the device's `stats["concurrent"]`.

**Repeatability.** Every operation draws from `random.Random(f"{seed}:{device_id}:{counter}")`, the seed
from the account credentials (`{"seed": n}`), the counter stored on the device; the same calls in the same
order give the same story.

**Webhook signing** (our own simple scheme): header `X-Simulator-Signature: sha256=<hex>` where hex is
HMAC-SHA256 of the raw body keyed with the account's webhook secret (UTF-8). Body: one JSON event
`{event_id, profile, device_id, type, code_ref, vendor_ref, reason, clash_ref, detail, pin, occurred_at}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

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
    sent_spec,
)
from providers.models import ProviderAccount, SimulatedDevice, SimulatorProfile

if TYPE_CHECKING:
    from locks.models import AccessCode, Lock, LockCommand

SIGNATURE_HEADER = "X-Simulator-Signature"
NATIVE_CLEANUP_DELAY = timedelta(minutes=15)  # a natively scheduled lock drops an ended code on its own
FINISHED_OPS_KEPT = timedelta(days=3)  # finished operations answer command_status this long
# Guests who "arrive": the chance a time-bound code is used at all, and when (after its window starts).
ARRIVAL_CHANCE = 0.9
ARRIVAL_AFTER = (timedelta(minutes=20), timedelta(hours=5))

FAULT_KNOBS = (
    "latency", "timeout", "nack", "lost_webhook", "duplicate_webhook", "reorder_webhook", "desync", "busy",
    "external_pin",
)

FAULT_PRESETS: dict[str, dict[str, float]] = {
    "none": {},
    "default": {
        "latency": 90, "timeout": 0.10, "nack": 0.05, "lost_webhook": 0.10, "duplicate_webhook": 0.05,
        "reorder_webhook": 0.05, "desync": 0.02, "busy": 0.02, "external_pin": 0.01,
    },
    "harsh": {
        "latency": 240, "timeout": 0.25, "nack": 0.15, "lost_webhook": 0.30, "duplicate_webhook": 0.15,
        "reorder_webhook": 0.15, "desync": 0.05, "busy": 0.08, "external_pin": 0.03,
    },
}


@dataclass(frozen=True)
class Profile:
    native_scheduling: bool
    pin_readable: bool
    code_ref_prefix: str  # "" for slots
    op_ref_prefix: str
    requirements: dict[str, Any]
    events: dict[str, str]  # outcome → the vendor's event type
    events_carry_vendor_ref: bool
    words: dict[str, str] = field(default_factory=dict)  # failure → the vendor's words


PROFILES: dict[str, Profile] = {
    SimulatorProfile.SEAM: Profile(
        native_scheduling=True, pin_readable=True, code_ref_prefix="ac_", op_ref_prefix="aa_",
        requirements={"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 50, "constraints": [],
                      "name_max_length": 32},
        events={"set": "access_code.set_on_device", "scheduled": "access_code.scheduled_on_device",
                "removed": "access_code.removed_from_device", "set_failed": "access_code.failed_to_set_on_device",
                "remove_failed": "access_code.failed_to_remove_from_device", "unlocked": "lock.unlocked"},
        events_carry_vendor_ref=False,
        words={"nack": "failed_to_set_on_device", "duplicate_pin": "duplicate_code_on_device"},
    ),
    SimulatorProfile.SMARTTHINGS: Profile(
        native_scheduling=False, pin_readable=False, code_ref_prefix="", op_ref_prefix="",
        requirements={"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 30, "constraints": [],
                      "name_max_length": 20},
        events={"set": "codeChanged.set", "removed": "codeChanged.deleted", "set_failed": "codeChanged.failed",
                "remove_failed": "codeChanged.failed", "unlocked": "lock.unlocked"},
        events_carry_vendor_ref=False,
        words={"busy": "busy"},
    ),
    SimulatorProfile.NUKI: Profile(
        native_scheduling=False, pin_readable=True, code_ref_prefix="auth_", op_ref_prefix="req_",
        requirements={"code_lengths": [6], "max_active_codes": 100,
                      "constraints": ["no_zeros", "cannot_start_with_12"], "name_max_length": 20},
        events={"set": "DEVICE_AUTHS", "removed": "DEVICE_AUTHS.deleted", "set_failed": "DEVICE_AUTHS.error",
                "remove_failed": "DEVICE_AUTHS.error", "unlocked": "DEVICE_LOGS"},
        events_carry_vendor_ref=True,
        words={"busy": "423 Locked: the authorization is locked for another operation",
               "duplicate_pin": "409 Conflict: code already exists", "nack": "Nack",
               "invalid_pin": "400 Bad Request: code must be 6 digits 1-9 and not start with 12",
               "not_found_on_device": "404 Not Found: smartlock auth"},
    ),
    SimulatorProfile.SCHLAGE: Profile(
        native_scheduling=False, pin_readable=True, code_ref_prefix="acc_", op_ref_prefix="cmd_",
        requirements={"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 100,
                      "constraints": ["unique_first_four_digits"], "name_max_length": 20},
        events={"set": "CommandStatusUpdated.Successful", "removed": "CommandStatusUpdated.Successful",
                "set_failed": "CommandStatusUpdated.Failed", "remove_failed": "CommandStatusUpdated.Failed",
                "unlocked": "DeviceLockStateChanged"},
        events_carry_vendor_ref=True,
        words={"nack": "Nack", "duplicate_pin": "Access code/code name are already in use",
               "not_found_on_device": "Access code ID not found on device"},
    ),
}

# The vendor's event type → what it means to the engine. Schlage reports commands, the others codes.
EVENT_KINDS: dict[str, dict[str, EventKind]] = {
    SimulatorProfile.SEAM: {
        "access_code.set_on_device": EventKind.CODE_SET,
        "access_code.scheduled_on_device": EventKind.CODE_SCHEDULED,
        "access_code.removed_from_device": EventKind.CODE_REMOVED,
        "access_code.failed_to_set_on_device": EventKind.CODE_FAILED,
        "access_code.failed_to_remove_from_device": EventKind.COMMAND_FAILED,
        "lock.unlocked": EventKind.CODE_USED,
    },
    SimulatorProfile.SMARTTHINGS: {
        "codeChanged.set": EventKind.CODE_SET,
        "codeChanged.deleted": EventKind.CODE_REMOVED,
        "codeChanged.failed": EventKind.CODE_FAILED,
        "lock.unlocked": EventKind.CODE_USED,
    },
    SimulatorProfile.NUKI: {
        "DEVICE_AUTHS": EventKind.CODE_SET,
        "DEVICE_AUTHS.deleted": EventKind.CODE_REMOVED,
        "DEVICE_AUTHS.error": EventKind.COMMAND_FAILED,
        "DEVICE_LOGS": EventKind.CODE_USED,
    },
    SimulatorProfile.SCHLAGE: {
        "CommandStatusUpdated.Successful": EventKind.COMMAND_SUCCEEDED,
        "CommandStatusUpdated.Failed": EventKind.COMMAND_FAILED,
        "DeviceLockStateChanged": EventKind.CODE_USED,
    },
}

PENDING, LOST, SUCCEEDED, FAILED = "pending", "lost", "succeeded", "failed"


# --------------------------------------------------------------------------- devices


def profile_for_lock(lock: Lock) -> str:
    """The profile a lock asks for (`requirements["simulator_profile"]`), else one that fits it."""
    wanted = (lock.requirements or {}).get("simulator_profile")
    if wanted in PROFILES:
        return wanted
    return SimulatorProfile.SEAM if lock.native_scheduling else SimulatorProfile.SMARTTHINGS


def simulator_device_create(
    *,
    account: ProviderAccount,
    device_id: str,
    profile: str,
    name: str = "",
    requirements: Mapping[str, Any] | None = None,
    faults: Mapping[str, float] | None = None,
    external_codes: Mapping[str, str] | None = None,
) -> SimulatedDevice:
    """Create (or return) a virtual lock. `external_codes` ({name: pin}) are already on the keypad,
    set outside the portal."""
    if profile not in PROFILES:
        raise ValueError(f"unknown simulator profile {profile!r}")
    simulator_account_prepare(account=account)
    reqs = {**PROFILES[profile].requirements, **{k: v for k, v in (requirements or {}).items()
                                                if k != "simulator_profile"}}
    device, created = SimulatedDevice.objects.get_or_create(
        account=account, device_id=device_id,
        defaults={"tenant_id": account.tenant_id, "profile": profile, "name": name or device_id,
                  "requirements": reqs, "faults": dict(faults or {})},
    )
    if created and external_codes:
        for code_name, pin in external_codes.items():
            ref = _new_code_ref(device, PROFILES[profile])
            device.codes[ref] = {"pin": pin, "name": code_name, "starts_at": None, "ends_at": None,
                                 "status": "set", "code_id": None, "external": True}
        device.save(update_fields=["codes", "serial"])
    return device


def simulator_account_prepare(*, account: ProviderAccount) -> None:
    """The simulated cloud hands out a webhook secret on first use, like a vendor registering a webhook."""
    if not account.webhook_secret:
        account.webhook_secret = secrets.token_urlsafe(32)
        account.save(update_fields=["webhook_secret"])


def _device_for(lock: Lock, *, for_update: bool = True) -> SimulatedDevice:
    queryset = SimulatedDevice.objects.select_for_update() if for_update else SimulatedDevice.objects
    device = queryset.filter(account_id=lock.provider_account_id, device_id=lock.vendor_device_id).first()
    if device is None:
        simulator_device_create(
            account=lock.provider_account, device_id=lock.vendor_device_id, profile=profile_for_lock(lock),
            name=lock.name, requirements=lock.requirements,
        )
        device = queryset.get(account_id=lock.provider_account_id, device_id=lock.vendor_device_id)
    return device


def _faults(device: SimulatedDevice, account: ProviderAccount) -> dict[str, float]:
    base = (account.credentials or {}).get("faults") or {}
    return {knob: float(device.faults.get(knob, base.get(knob, 0)) or 0) for knob in FAULT_KNOBS}


def _rng(device: SimulatedDevice, account: ProviderAccount) -> random.Random:
    seed = (account.credentials or {}).get("seed", 0)
    device.counter += 1
    return random.Random(f"{seed}:{device.device_id}:{device.counter}")


def _count(device: SimulatedDevice, action: str) -> None:
    calls = device.stats.setdefault("calls", {})
    calls[action] = calls.get(action, 0) + 1


def _new_code_ref(device: SimulatedDevice, profile: Profile) -> str:
    if not profile.code_ref_prefix:  # slots
        reserved = set(device.codes) | {op["ref"] for op in device.operations if op["state"] == PENDING}
        limit = int(device.requirements.get("max_active_codes") or 30)
        for slot in range(1, limit + 1):
            if str(slot) not in reserved:
                return str(slot)
        raise ProviderError(Reason.SLOTS_FULL, f"no free slot among {limit}")
    device.serial += 1
    return f"{profile.code_ref_prefix}{device.device_id}-{device.serial}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _at(value: str) -> datetime:
    """A timestamp known to be there: an operation's due_at, a webhook's deliver_at, a window end once checked."""
    return datetime.fromisoformat(value)


# --------------------------------------------------------------------------- the provider


class SimulatorProvider(Provider):
    vendor = "simulator"

    def check_connection(self) -> None:
        if self.credentials.get("fail_auth"):
            raise ProviderError(Reason.AUTH_FAILED, "401 Unauthorized (simulated)", status_code=401)

    def list_devices(self) -> list[DeviceInfo]:
        return [
            DeviceInfo(
                vendor_device_id=device.device_id, name=device.name, model=f"Simulated {device.profile}",
                # The profile travels with the lock, so the imported lock behaves as its device does.
                requirements={**device.requirements, "simulator_profile": device.profile},
                native_scheduling=PROFILES[device.profile].native_scheduling,
                pin_readable=PROFILES[device.profile].pin_readable,
                online=device.online, battery_level=device.battery_level,
            )
            for device in SimulatedDevice.objects.filter(account=self.account)
        ]

    def create_code(self, lock: Lock, code: AccessCode) -> Receipt:
        return self._submit(lock, "create", code=code)

    def update_code(self, lock: Lock, code: AccessCode) -> Receipt:
        return self._submit(lock, "update", code=code)

    def delete_code(self, lock: Lock, code: AccessCode) -> Receipt:
        return self._submit(lock, "delete", code=code)

    def delete_observed_code(self, lock: Lock, vendor_code_ref: str) -> Receipt:
        return self._submit(lock, "delete", ref=vendor_code_ref)

    def reload_codes(self, lock: Lock) -> Receipt:
        with transaction.atomic():
            device = _device_for(lock)
            _count(device, "reload_codes")
            device.save(update_fields=["stats"])
        return Receipt(progress=Progress.DONE, detail="codes reloaded")

    def command_status(self, lock: Lock, command: LockCommand) -> Outcome:
        with transaction.atomic():
            device = _device_for(lock)
            _count(device, "command_status")
            device.save(update_fields=["stats"])
        op = next((op for op in device.operations if command.vendor_ref and op["id"] == command.vendor_ref), None)
        if op is None and command.access_code_id:
            # No reference (or forgotten): answer from the lock, as a vendor's code lookup would, judged
            # by what the command sent.
            sent = sent_spec(command)
            on_lock = device.codes.get(sent.code_ref) if sent.code_ref else None
            if command.action == "delete":
                return Outcome(Progress.DONE if on_lock is None else Progress.PENDING)
            if on_lock is not None and sent.holds_pin(on_lock["pin"]):
                return Outcome(Progress.DONE, vendor_code_ref=sent.code_ref)
            return Outcome(Progress.PENDING)
        if op is None or op["state"] in (PENDING, LOST):
            return Outcome(Progress.PENDING)
        if op["state"] == SUCCEEDED:
            return Outcome(Progress.DONE, vendor_code_ref=op["ref"], detail="succeeded")
        return Outcome(Progress.FAILED, reason=op["reason"], vendor_code_ref=op["ref"],
                       clash_code_ref=op.get("clash_ref", ""), detail=op.get("detail", ""))

    def read_codes(self, lock: Lock) -> list[ObservedCode] | None:
        with transaction.atomic():
            device = _device_for(lock)
            _count(device, "read_codes")
            device.save(update_fields=["stats"])
        profile = PROFILES[device.profile]
        return [
            ObservedCode(
                vendor_code_ref=ref, name=held["name"], pin=held["pin"] if profile.pin_readable else None,
                starts_at=_dt(held["starts_at"]), ends_at=_dt(held["ends_at"]), status="set",
                managed=not held["external"] if device.profile == SimulatorProfile.SEAM else None,
            )
            for ref, held in sorted(device.codes.items())
        ]

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        given = _header(headers, SIGNATURE_HEADER)
        if not self.webhook_secret or not given.startswith("sha256="):
            raise WebhookVerificationError("missing simulator signature")
        if not hmac.compare_digest(given.removeprefix("sha256="), sign(body, self.webhook_secret)):
            raise WebhookVerificationError("bad simulator signature")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[VendorEvent]:
        try:
            event = json.loads(body)
            kind = EVENT_KINDS[event["profile"]].get(event["type"], EventKind.IGNORED)
            return [VendorEvent(
                vendor_event_id=str(event["event_id"]), kind=kind, vendor_device_id=event["device_id"],
                vendor_ref=event.get("vendor_ref") or "", vendor_code_ref=event.get("code_ref") or "",
                reason=event.get("reason") or "", clash_code_ref=event.get("clash_ref") or "",
                pin=event.get("pin"), occurred_at=_dt(event.get("occurred_at")),
                detail=event.get("detail") or "", raw_type=event["type"],
            )]
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookVerificationError(f"not a simulator event: {exc}") from exc

    # --- the simulated cloud accepting an operation

    def _submit(self, lock: Lock, action: str, *, code: AccessCode | None = None, ref: str = "") -> Receipt:
        now = timezone.now()
        with transaction.atomic():
            device = _device_for(lock)
            _count(device, action)
            if code is not None:  # per code, so a run can tell "one create and one delete per code"
                sends = device.stats.setdefault("sends", {}).setdefault(str(code.pk), {})
                sends[action] = sends.get(action, 0) + 1
            try:
                receipt: Receipt | None = _accept(device, self.account, action, code=code, ref=ref, now=now)
                refusal: ProviderError | None = None
            except ProviderError as exc:
                # Keep what the refusal consumed (the random draw, the call count): raising inside the
                # transaction would roll it back, and the next call would be refused the same way.
                receipt, refusal = None, exc
            device.next_due_at = _next_due(device)
            device.save()
        self._answer_delay()  # accepted (and committed) first: the lock may finish before we hear back
        if refusal is not None:
            raise refusal
        assert receipt is not None
        return receipt

    def _answer_delay(self) -> None:
        delay = float((self.account.credentials or {}).get("answer_ms") or 0)
        if delay > 0:
            time.sleep(delay / 1000)


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((str(value) for key, value in headers.items() if key.lower() == wanted), "")


def _pin_rejection(device: SimulatedDevice, pin: str) -> str:
    """Why the lock's own rules refuse this PIN ("" if they do not)."""
    if device.profile == SimulatorProfile.NUKI and (
        len(pin) != 6 or not all(c in "123456789" for c in pin) or pin.startswith("12")
    ):
        return PROFILES[SimulatorProfile.NUKI].words["invalid_pin"]
    if not pin.isdigit():
        return "PIN must be digits"
    return ""


def _accept(
    device: SimulatedDevice, account: ProviderAccount, action: str, *, code: AccessCode | None, ref: str,
    now: datetime,
) -> Receipt:
    profile = PROFILES[device.profile]
    faults = _faults(device, account)
    rng = _rng(device, account)
    # Draw everything up front, in one order, so a refused call costs the same draws as an accepted one.
    draws = {knob: rng.random() for knob in FAULT_KNOBS if knob != "latency"}
    latency = faults["latency"] * (0.5 + rng.random())
    external_is_same_pin = rng.random() < 0.5
    external_pin_seed = rng.random()
    webhook_delay = rng.randint(1, 5)

    pin = code.pin if code is not None else ""
    ref = ref or (code.vendor_code_ref if code is not None else "")
    running = [op for op in device.operations if op["state"] == PENDING]
    if running:  # the engine promises one operation in flight per lock; count every breach
        device.stats["concurrent"] = device.stats.get("concurrent", 0) + 1
    summary = {"action": action, "device_id": device.device_id}

    if draws["busy"] < faults["busy"]:
        raise ProviderError(Reason.BUSY, profile.words.get("busy", "device busy"), status_code=423)
    if device.profile == SimulatorProfile.SMARTTHINGS and running:
        raise ProviderError(Reason.BUSY, "busy: another operation is in progress")
    if device.profile == SimulatorProfile.NUKI and ref and any(op["ref"] == ref for op in running):
        raise ProviderError(Reason.BUSY, profile.words["busy"], status_code=423)

    if action == "delete":
        if not ref or (ref not in device.codes and device.profile != SimulatorProfile.SCHLAGE):
            return Receipt(progress=Progress.DONE, vendor_code_ref=ref, detail="not on the lock",
                           request_summary=summary)
    elif action == "update" and not ref:
        raise ProviderError(Reason.NOT_FOUND_ON_DEVICE, "no access code reference to update")
    else:
        rejection = _pin_rejection(device, pin)
        if rejection:
            raise ProviderError(Reason.INVALID_PIN, rejection, status_code=400)
        if device.profile == SimulatorProfile.NUKI and _holder_of(device, pin, except_ref=ref):
            raise ProviderError(Reason.DUPLICATE_PIN, profile.words["duplicate_pin"], status_code=409)
        if action == "create":
            ref = ref if (not profile.code_ref_prefix and ref and ref not in device.codes) else ""
            ref = ref or _new_code_ref(device, profile)

    _note_double_send(device, action, code, running)
    device.serial += 1
    op_id = f"{profile.op_ref_prefix}{device.device_id}-{device.serial}" if profile.op_ref_prefix else (
        f"{ref}@{now.isoformat()}")
    fate = LOST if draws["timeout"] < faults["timeout"] else PENDING
    device.operations.append({
        "id": op_id, "action": action, "ref": ref, "code_id": code.pk if code is not None else None,
        "pin": pin, "name": code.name if code is not None else "",
        "starts_at": _iso(code.starts_at) if code is not None else None,
        "ends_at": _iso(code.ends_at) if code is not None else None,
        "submitted_at": now.isoformat(), "due_at": (now + timedelta(seconds=latency)).isoformat(),
        "state": fate, "nack": draws["nack"] < faults["nack"], "desync": draws["desync"] < faults["desync"],
        "webhook": _webhook_fate(draws, faults), "webhook_delay": webhook_delay,
    })
    if fate == LOST:
        device.stats["lost_operations"] = device.stats.get("lost_operations", 0) + 1
    if action != "delete" and draws["external_pin"] < faults["external_pin"]:
        _set_external_code(device, profile, pin if external_is_same_pin else "", external_pin_seed, len(pin))
    return Receipt(progress=Progress.PENDING, vendor_ref=op_id, vendor_code_ref=ref,
                   request_summary={**summary, "code_ref": ref})


def _webhook_fate(draws: Mapping[str, float], faults: Mapping[str, float]) -> str:
    if draws["lost_webhook"] < faults["lost_webhook"]:
        return "lost"
    if draws["duplicate_webhook"] < faults["duplicate_webhook"]:
        return "duplicate"
    if draws["reorder_webhook"] < faults["reorder_webhook"]:
        return "reorder"
    return "ok"


def _note_double_send(
    device: SimulatedDevice, action: str, code: AccessCode | None, running: list[dict[str, Any]]
) -> None:
    """The same change for the same code while the first one is still being carried out: a double send."""
    if code is None:
        return
    for op in running:
        if (op["code_id"], op["action"], op["pin"], op["starts_at"], op["ends_at"]) == (
            code.pk, action, code.pin, _iso(code.starts_at), _iso(code.ends_at)
        ):
            device.stats["double_sends"] = device.stats.get("double_sends", 0) + 1
            return


def _holder_of(device: SimulatedDevice, pin: str, *, except_ref: str = "") -> str:
    return next((ref for ref, held in sorted(device.codes.items()) if held["pin"] == pin and ref != except_ref), "")


def _set_external_code(device: SimulatedDevice, profile: Profile, pin: str, seed: float, length: int) -> None:
    """Someone types a code in at the keypad (or in the vendor's app)."""
    if not pin:
        rng = random.Random(seed)
        digits = "123456789" if device.profile == SimulatorProfile.NUKI else "0123456789"
        for _ in range(50):
            pin = "".join(rng.choice(digits) for _ in range(max(length, 4)))
            if not _pin_rejection(device, pin) and not _holder_of(device, pin):
                break
    if _holder_of(device, pin):
        return
    try:
        ref = _new_code_ref(device, profile)
    except ProviderError:
        return  # no room on the lock: the keypad refuses it too
    device.codes[ref] = {"pin": pin, "name": "Set at the keypad", "starts_at": None, "ends_at": None,
                         "status": "set", "code_id": None, "external": True}
    device.stats["external_codes"] = device.stats.get("external_codes", 0) + 1


# --------------------------------------------------------------------------- time passing


def simulator_advance(*, account: ProviderAccount, now: datetime) -> int:
    """Let the simulated cloud and locks catch up to `now`: finish due operations, start and end natively
    scheduled codes, deliver due webhooks (through `webhook_ingest`). Returns the webhooks delivered."""
    simulator_account_prepare(account=account)
    deliveries: list[tuple[str, int, dict[str, Any]]] = []  # (deliver_at, seq, body)
    interleave = float((account.credentials or {}).get("interleave") or 0)
    with transaction.atomic():
        devices = SimulatedDevice.objects.select_for_update().filter(account=account).filter(
            Q(next_due_at__lte=now) | Q(next_arrival_at__lte=now)
        ).order_by("device_id")
        for device in devices:
            _device_advance(device, account, now)
            due = [item for item in device.outbox if _at(item["deliver_at"]) <= now]
            device.outbox = [item for item in device.outbox if _at(item["deliver_at"]) > now]
            due = sorted(due, key=lambda item: (_at(item["deliver_at"]), item["seq"]))
            bodies = [item["body"] for item in due]
            if interleave:  # the same delivery slots, the bodies mixed across codes
                bodies = _interleave(bodies, random.Random(f"{(account.credentials or {}).get('seed', 0)}:"
                                                           f"{device.device_id}:{now.isoformat()}"), interleave)
            deliveries.extend((item["deliver_at"], item["seq"], body) for item, body in zip(due, bodies, strict=True))
            device.next_due_at = _next_due(device)
            device.next_arrival_at = _next_arrival(device)
            device.save()
    for _, _, body in sorted(deliveries, key=lambda item: (_dt(item[0]), item[1])):
        simulator_deliver(account=account, body=body)
    return len(deliveries)


def _interleave(bodies: list[dict[str, Any]], rng: random.Random, chance: float) -> list[dict[str, Any]]:
    """Mix the events of different codes of one lock (each code's own events keep their order)."""
    if rng.random() >= chance:
        return bodies
    queues: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        queues.setdefault(str(body.get("code_ref") or ""), []).append(body)
    mixed: list[dict[str, Any]] = []
    while queues:
        ref = rng.choice(sorted(queues))
        mixed.append(queues[ref].pop(0))
        if not queues[ref]:
            del queues[ref]
    return mixed


def simulator_deliver(*, account: ProviderAccount, body: Mapping[str, Any]) -> None:
    """POST one event to ourselves: signed, through the same ingestion path as real webhooks."""
    from providers.webhooks import webhook_ingest

    raw = json.dumps(body, sort_keys=True).encode()
    webhook_ingest(account=account, body=raw, headers={
        SIGNATURE_HEADER: f"sha256={sign(raw, account.webhook_secret)}", "Content-Type": "application/json",
    })


def simulator_next_due(*, account: ProviderAccount) -> datetime | None:
    """The earliest moment the simulated cloud has something to do (for jumping a virtual clock)."""
    return SimulatedDevice.objects.filter(account=account, next_due_at__isnull=False).order_by(
        "next_due_at"
    ).values_list("next_due_at", flat=True).first()


def _device_advance(device: SimulatedDevice, account: ProviderAccount, now: datetime) -> None:
    profile = PROFILES[device.profile]
    # Guests first: an arrival may be older than operations finishing in this same catch-up.
    for ref, held in sorted(device.codes.items()):
        arrive_at = _dt(held.get("arrive_at"))
        if arrive_at is not None and arrive_at <= now and not held.get("arrived"):
            held["arrived"] = True
            starts = _dt(held["starts_at"])
            working = held["status"] == "set" or (starts is not None and starts <= arrive_at)
            if working:  # the guest types the code; a code the lock does not hold opens nothing
                _emit_arrival(device, account, profile, ref=ref, held=held, now=arrive_at)
    for op in sorted(device.operations, key=lambda op: _at(op["due_at"])):
        if op["state"] == PENDING and _at(op["due_at"]) <= now:
            _finish(device, account, profile, op, _at(op["due_at"]))
    if profile.native_scheduling:
        for ref, held in sorted(device.codes.items()):
            starts, ends = _dt(held["starts_at"]), _dt(held["ends_at"])
            if held["status"] == "scheduled" and starts is not None and starts <= now:
                held["status"] = "set"
                _emit(device, account, profile, "set", ref=ref, now=starts, pin=held["pin"])
            elif not held["external"] and ends is not None and ends + NATIVE_CLEANUP_DELAY <= now:
                del device.codes[ref]
                _emit(device, account, profile, "removed", ref=ref, now=ends + NATIVE_CLEANUP_DELAY)
    cutoff = now - FINISHED_OPS_KEPT
    # A lie (`desync`) is kept: it is the record of what the lock really holds, which the run's checks read.
    device.operations = [op for op in device.operations
                         if op["state"] == PENDING or op.get("desync") or _at(op["due_at"]) > cutoff]


def _finish(
    device: SimulatedDevice, account: ProviderAccount, profile: Profile, op: dict[str, Any], now: datetime
) -> None:
    """The lock has done (or failed) the operation; the cloud tells us by webhook."""
    ref, held = op["ref"], device.codes.get(op["ref"])
    failure = _failure(device, profile, op, held)
    outcome = "remove" if op["action"] == "delete" else "set"
    if failure is not None:
        reason, detail, clash = failure
        op.update(state=FAILED, reason=reason, detail=detail, clash_ref=clash)
        # SmartThings reports a clash on the slot that holds the PIN, not on the one we were setting.
        event_ref = clash if device.profile == SimulatorProfile.SMARTTHINGS and clash else ref
        _emit(device, account, profile, f"{outcome}_failed", ref=event_ref, now=now, op=op, reason=reason,
              detail=detail, clash=clash)
        return
    op.update(state=SUCCEEDED)
    if op["action"] == "delete":
        if not op["desync"]:  # with desync the lock kept it, though the cloud says it is gone
            device.codes.pop(ref, None)
        _emit(device, account, profile, "removed", ref=ref, now=now, op=op)
        return
    starts = _dt(op["starts_at"])
    scheduled = profile.native_scheduling and starts is not None and starts > now
    if not op["desync"]:  # with desync the lock lost it, though the cloud says it is there
        before = device.codes.get(ref) or {}
        device.codes[ref] = {"pin": op["pin"], "name": op["name"], "starts_at": op["starts_at"],
                             "ends_at": op["ends_at"], "status": "scheduled" if scheduled else "set",
                             "code_id": op["code_id"], "external": False,
                             "arrive_at": _arrival(account, device, ref, op), "arrived": bool(before.get("arrived"))}
        if not profile.native_scheduling and op["code_id"] is not None:
            _note_early_exposure(device, code_id=op["code_id"], starts=starts, now=now)
    _emit(device, account, profile, "scheduled" if scheduled else "set", ref=ref, now=now, op=op, pin=op["pin"])


def _note_early_exposure(device: SimulatedDevice, *, code_id: int, starts: datetime | None, now: datetime) -> None:
    """A lock that does not enforce windows opens for a code from the moment it holds it: note (in
    `stats["early_exposure"]`, code id → seconds) the longest a code was live before its window started."""
    seconds = max(int((starts - now).total_seconds()), 0) if starts is not None else 0
    exposure = device.stats.setdefault("early_exposure", {})
    exposure[str(code_id)] = max(exposure.get(str(code_id), 0), seconds)


def _failure(
    device: SimulatedDevice, profile: Profile, op: dict[str, Any], held: dict[str, Any] | None
) -> tuple[str, str, str] | None:
    """(reason, vendor words, clashing ref) when the lock refuses the operation."""
    words = profile.words
    if op["nack"]:
        own = f"{op['ref']} failed" if device.profile == SimulatorProfile.SMARTTHINGS else words.get("nack", "nack")
        return Reason.NACK, own, ""
    if op["action"] == "delete":
        if held is None and device.profile == SimulatorProfile.SCHLAGE:
            return Reason.NOT_FOUND_ON_DEVICE, words["not_found_on_device"], ""
        return None
    if op["action"] == "update" and held is None and device.profile in (SimulatorProfile.SCHLAGE,
                                                                        SimulatorProfile.NUKI):
        return Reason.NOT_FOUND_ON_DEVICE, words["not_found_on_device"], ""
    clash = _holder_of(device, op["pin"], except_ref=op["ref"])
    if clash:
        detail = f"{clash} failed" if device.profile == SimulatorProfile.SMARTTHINGS else words.get(
            "duplicate_pin", "duplicate code")
        return Reason.DUPLICATE_PIN, detail, clash
    lengths = {len(other["pin"]) for ref, other in device.codes.items() if ref != op["ref"]}
    if device.profile == SimulatorProfile.SCHLAGE and lengths and len(op["pin"]) not in lengths:
        return Reason.INVALID_PIN, f"Access code length must be {min(lengths)} digits", ""
    return None


def _emit(
    device: SimulatedDevice, account: ProviderAccount, profile: Profile, outcome: str, *, ref: str,
    now: datetime, op: dict[str, Any] | None = None, pin: str = "", reason: str = "", detail: str = "",
    clash: str = "",
) -> None:
    """Queue the webhook(s) for one outcome, with the webhook faults applied."""
    if op is None:  # the lock's own schedule: draw its webhook fate now
        faults, rng = _faults(device, account), _rng(device, account)
        draws = {knob: rng.random() for knob in ("lost_webhook", "duplicate_webhook", "reorder_webhook")}
        fate, delay = _webhook_fate(draws, faults), rng.randint(1, 5)
    else:
        fate, delay = op["webhook"], op["webhook_delay"]
    device.serial += 1
    body = {
        "event_id": f"{device.device_id}-ev{device.serial}", "profile": device.profile,
        "device_id": device.device_id, "type": profile.events[outcome], "code_ref": ref,
        "vendor_ref": op["id"] if op is not None and profile.events_carry_vendor_ref else "",
        "reason": reason, "clash_ref": clash, "detail": detail,
        "pin": pin if pin and profile.pin_readable else None, "occurred_at": now.isoformat(),
    }
    if fate == "lost":
        device.stats["lost_webhooks"] = device.stats.get("lost_webhooks", 0) + 1
        return
    deliver_at = now + timedelta(minutes=delay) if fate == "reorder" else now
    copies = 2 if fate == "duplicate" else 1
    for n in range(copies):
        device.outbox.append({"deliver_at": (deliver_at + timedelta(minutes=n)).isoformat(),
                              "seq": device.serial * 2 + n, "body": body})


def _next_arrival(device: SimulatedDevice) -> datetime | None:
    return min((_at(held["arrive_at"]) for held in device.codes.values()
                if held.get("arrive_at") and not held.get("arrived")), default=None)


def _arrival_rng(account: ProviderAccount, device: SimulatedDevice, ref: str, held: dict[str, Any]) -> random.Random:
    """Arrivals draw from a stream of their own, so they never shift the seeded story of the operations;
    it is keyed by what the lock holds (name, window), never by our row ids, so a seed repeats its story."""
    seed = (account.credentials or {}).get("seed", 0)
    return random.Random(f"{seed}:{device.device_id}:arrival:{ref}:{held['name']}:{held['starts_at']}")


def _arrival(account: ProviderAccount, device: SimulatedDevice, ref: str, op: dict[str, Any]) -> str | None:
    """When the guest holding this code first types it at the door (None: they never come, or the code has
    no window, like a backup code waiting in its pool)."""
    starts, ends = _dt(op["starts_at"]), _dt(op["ends_at"])
    if starts is None or ends is None or op.get("code_id") is None:
        return None
    rng = _arrival_rng(account, device, ref, op)
    if rng.random() >= ARRIVAL_CHANCE:
        return None
    low, high = ARRIVAL_AFTER
    delay = low + (high - low) * rng.random()
    return _iso(min(starts + delay, starts + (ends - starts) / 2))


def _emit_arrival(
    device: SimulatedDevice, account: ProviderAccount, profile: Profile, *, ref: str, held: dict[str, Any],
    now: datetime,
) -> None:
    """The lock reports that the code `ref` opened the door, through the same webhook path as the rest."""
    rng = _arrival_rng(account, device, ref, held)
    rng.random()  # the draw that decided the guest comes
    faults = _faults(device, account)
    draws = {knob: rng.random() for knob in ("lost_webhook", "duplicate_webhook", "reorder_webhook")}
    fate = _webhook_fate(draws, faults)
    if fate == "lost":
        device.stats["lost_webhooks"] = device.stats.get("lost_webhooks", 0) + 1
        return
    body = {
        "event_id": f"{device.device_id}-arrival-{held.get('code_id')}-{ref}", "profile": device.profile,
        "device_id": device.device_id, "type": profile.events["unlocked"], "code_ref": ref, "vendor_ref": "",
        "reason": "", "clash_ref": "", "detail": "unlocked with a code", "pin": None,
        "occurred_at": now.isoformat(),
    }
    deliver_at = now + timedelta(minutes=rng.randint(1, 5)) if fate == "reorder" else now
    for n in range(2 if fate == "duplicate" else 1):
        device.outbox.append({"deliver_at": (deliver_at + timedelta(minutes=n)).isoformat(),
                              "seq": device.serial * 2 + n, "body": body})


def _next_due(device: SimulatedDevice) -> datetime | None:
    candidates: list[datetime] = [_at(op["due_at"]) for op in device.operations if op["state"] == PENDING]
    candidates += [_at(item["deliver_at"]) for item in device.outbox]
    if PROFILES[device.profile].native_scheduling:
        for held in device.codes.values():
            if held["status"] == "scheduled" and held["starts_at"]:
                candidates.append(_at(held["starts_at"]))
            if not held["external"] and held["ends_at"]:
                candidates.append(_at(held["ends_at"]) + NATIVE_CLEANUP_DELAY)
    return min(candidates, default=None)


def simulator_devices(*, account: ProviderAccount) -> Iterator[SimulatedDevice]:
    yield from SimulatedDevice.objects.filter(account=account).order_by("device_id")
