"""The provider contract (DESIGN §5). Every vendor adapter, and the simulator, implements `Provider`.

Adapters translate, nothing more: vendor HTTP in, these dataclasses out; vendor words mapped to a
`Reason`. No database access, no retries, no business rules (the simulator is the one exception to
"no database": it *is* a vendor cloud, persisted in ours).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from portal.encryption import fingerprint

if TYPE_CHECKING:
    from locks.models import AccessCode, Lock, LockCommand
    from providers.models import ProviderAccount


class Reason(StrEnum):
    """Normalized failure reasons (DESIGN §4 retry table)."""

    TIMEOUT = "timeout"
    NACK = "nack"
    DEVICE_OFFLINE = "device_offline"
    BUSY = "busy"
    RATE_LIMITED = "rate_limited"
    VENDOR_ERROR = "vendor_error"
    DUPLICATE_PIN = "duplicate_pin"
    INVALID_PIN = "invalid_pin"
    SCHEDULE_INVALID = "schedule_invalid"
    SLOTS_FULL = "slots_full"
    NOT_FOUND_ON_DEVICE = "not_found_on_device"
    UNRECOGNIZED_JOB_STATE = "unrecognized_job_state"
    AUTH_FAILED = "auth_failed"
    DESYNC = "desync"
    USER_NOT_FOUND = "user_not_found"
    UNSUPPORTED = "unsupported"


TRANSIENT_REASONS = frozenset(
    {Reason.TIMEOUT, Reason.NACK, Reason.DEVICE_OFFLINE, Reason.BUSY, Reason.RATE_LIMITED, Reason.VENDOR_ERROR}
)


def is_transient(reason: str) -> bool:
    return reason in TRANSIENT_REASONS


class ProviderError(Exception):
    """Any failure talking to a vendor, normalized. `vendor_detail` keeps the vendor's own words."""

    def __init__(
        self,
        reason: Reason | str,
        vendor_detail: str = "",
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        clash_code_ref: str = "",
    ) -> None:
        self.reason = Reason(reason)
        self.vendor_detail = vendor_detail
        self.retry_after = retry_after
        self.status_code = status_code
        self.clash_code_ref = clash_code_ref  # e.g. the slot that already holds the PIN
        super().__init__(f"{self.reason}: {vendor_detail}" if vendor_detail else str(self.reason))

    @property
    def transient(self) -> bool:
        return is_transient(self.reason)


class WebhookVerificationError(Exception):
    """The webhook's signature, timestamp or shape is not acceptable; nothing may be stored."""


class Progress(StrEnum):
    PENDING = "pending"  # accepted by the vendor; the outcome arrives later (webhook, poll, read-back)
    DONE = "done"  # confirmed
    FAILED = "failed"  # the vendor reports the operation failed (see Outcome.reason)


@dataclass(frozen=True)
class DeviceInfo:
    vendor_device_id: str
    name: str
    model: str = ""
    # {"code_lengths": [...], "max_active_codes": n, "constraints": [...], "name_max_length": n}
    requirements: dict[str, Any] = field(default_factory=dict)
    native_scheduling: bool = False
    pin_readable: bool = False
    online: bool | None = None
    battery_level: float | None = None  # 0.0–1.0
    # The vendor login behind the device (e.g. Seam's connected account) is disconnected: a person must
    # reconnect it; the device's own "offline" then says nothing about the lock.
    account_disconnected: bool = False


@dataclass(frozen=True)
class Receipt:
    """What a create/update/delete call answered."""

    progress: Progress
    vendor_ref: str = ""  # Seam action_attempt_id, Schlage commandId, Nuki requestId, SmartThings slot+sent_at
    vendor_code_ref: str = ""  # Seam access_code_id, SmartThings slot, Nuki auth id, Schlage accessCodeId
    pin: str = ""  # set when the vendor chose the PIN (cannot_specify_pin_code)
    detail: str = ""
    request_summary: dict[str, Any] = field(default_factory=dict)  # redacted: never a PIN or a secret


@dataclass(frozen=True)
class Outcome:
    """What the vendor says about a command now (sweeper poll) or in an event."""

    progress: Progress
    reason: str = ""  # a Reason when progress is FAILED
    vendor_code_ref: str = ""
    clash_code_ref: str = ""
    detail: str = ""


@dataclass(frozen=True)
class SentSpec:
    """What a command sent: its claim record (DESIGN §4 "a command is judged by what it sent, not by the
    code's latest desire"). An adapter judges an outcome against this, so a newer edit waiting behind the
    command does not make the lock's answer read as a refusal."""

    code_ref: str = ""
    name: str = ""
    pin_fingerprint: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def holds_pin(self, pin: object) -> bool:
        """True when `pin` (as the vendor reports it) is the PIN sent; with no PIN recorded (the lock chose
        it) there is nothing to compare and any PIN is taken."""
        if not self.pin_fingerprint:
            return True
        return pin is not None and fingerprint(str(pin)) == self.pin_fingerprint


def sent_spec(command: LockCommand) -> SentSpec:
    """The command's claim record; for a command claimed before claims were recorded, its code as it is."""
    code = command.access_code
    code_ref = command.sent_code_ref or (code.vendor_code_ref if code is not None else command.target_ref)
    if command.has_claim_record or code is None:
        return SentSpec(code_ref, command.sent_name, command.sent_pin_fingerprint, command.sent_starts_at,
                        command.sent_ends_at)
    return SentSpec(code_ref, code.name, code.pin_fingerprint, code.starts_at, code.ends_at)


@dataclass(frozen=True)
class ObservedCode:
    """A code as the vendor reports it on a lock."""

    vendor_code_ref: str
    name: str = ""
    pin: str | None = None  # None when the vendor cannot read PINs back
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: str = "set"  # set | setting | removing | unknown
    managed: bool | None = None  # the vendor's own "is_managed", where it has one


class EventKind(StrEnum):
    COMMAND_SUCCEEDED = "command_succeeded"  # correlate by vendor_ref / vendor_code_ref
    COMMAND_FAILED = "command_failed"
    CODE_SET = "code_set"  # the code is on the lock (and active)
    CODE_SCHEDULED = "code_scheduled"  # preloaded on a natively scheduling lock, window not started
    CODE_REMOVED = "code_removed"
    CODE_FAILED = "code_failed"  # the lock rejected a code (reason, maybe clash_code_ref)
    CODE_CHANGED_EXTERNALLY = "code_changed_externally"
    CODES_CLEARED = "codes_cleared"  # every code on the lock was deleted
    DEVICE_ONLINE = "device_online"
    DEVICE_OFFLINE = "device_offline"
    BATTERY = "battery"
    DEVICE_CONDITION = "device_condition"  # the device needs a person (`condition` says why)
    DEVICE_CONDITION_CLEARED = "device_condition_cleared"  # the vendor's all-clear for that `condition`
    UNMANAGED_CODE = "unmanaged_code"  # a code appeared on the lock that we did not put there
    ACCOUNT_DISCONNECTED = "account_disconnected"  # the vendor login behind the device stopped working
    CODE_USED = "code_used"  # the lock opened with the code `vendor_code_ref` (an arrival, DESIGN §7)
    CODE_DENIED = "code_denied"  # the lock refused a code typed at it (`vendor_code_ref` when it names one)
    IGNORED = "ignored"  # a well-formed event we have no use for (stored, not acted on)


class DeviceCondition(StrEnum):
    """What about a device needs a person (the engine opens an issue of the same name)."""

    KEYPAD_DISCONNECTED = "keypad_disconnected"
    TAMPERED = "device_tampered"
    THIRD_PARTY_INTEGRATION = "third_party_integration"
    SUBSCRIPTION_REQUIRED = "subscription_required"


@dataclass(frozen=True)
class VendorEvent:
    vendor_event_id: str
    kind: EventKind
    vendor_device_id: str = ""
    vendor_ref: str = ""
    vendor_code_ref: str = ""
    reason: str = ""
    clash_code_ref: str = ""
    pin: str | None = None
    battery_level: float | None = None
    occurred_at: datetime | None = None
    detail: str = ""
    raw_type: str = ""  # the vendor's own event type, for the timeline
    condition: str = ""  # a DeviceCondition, for DEVICE_CONDITION(_CLEARED)


@dataclass(frozen=True)
class WebhookReply:
    """For vendors whose webhook wants a specific answer (SmartThings PING / CONFIRMATION)."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    # What the lifecycle changed on the account (SmartThings INSTALL/UPDATE: an oauth.InstalledApp), for
    # the intake to hand to the engine's token keeper.
    installed: Any = None


class Provider(ABC):
    vendor: ClassVar[str]
    default_base_url: ClassVar[str] = ""
    timeout: ClassVar[tuple[float, float]] = (5.0, 20.0)  # connect, read — every HTTP call has one

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account
        self.credentials: dict[str, Any] = dict(account.credentials or {})
        self.webhook_secret: str = account.webhook_secret or ""
        self.base_url: str = (self.credentials.get("base_url") or self.default_base_url).rstrip("/")

    # --- connection and devices
    @abstractmethod
    def check_connection(self) -> None:
        """Raise ProviderError (AUTH_FAILED, VENDOR_ERROR, …) when the credentials do not work."""

    @abstractmethod
    def list_devices(self) -> list[DeviceInfo]: ...

    # --- codes
    @abstractmethod
    def create_code(self, lock: Lock, code: AccessCode) -> Receipt: ...

    @abstractmethod
    def update_code(self, lock: Lock, code: AccessCode) -> Receipt: ...

    @abstractmethod
    def delete_code(self, lock: Lock, code: AccessCode) -> Receipt: ...

    @abstractmethod
    def command_status(self, lock: Lock, command: LockCommand) -> Outcome:
        """What the vendor says about `command` now, judged against what it sent (`sent_spec(command)`),
        not against its code's latest values."""

    @abstractmethod
    def read_codes(self, lock: Lock) -> list[ObservedCode] | None:
        """Codes the vendor reports on the lock; None when this lock cannot be read."""

    def reload_codes(self, lock: Lock) -> Receipt:
        """Ask the lock to report its codes afresh (SmartThings reloadAllCodes, Nuki sync)."""
        raise ProviderError(Reason.UNSUPPORTED, f"{self.vendor} cannot reload codes on demand")

    def delete_observed_code(self, lock: Lock, vendor_code_ref: str) -> Receipt:
        """Remove a code we do not manage (an `unmanaged_code` the staff chose to remove)."""
        raise ProviderError(Reason.UNSUPPORTED, f"{self.vendor} cannot remove codes by reference")

    # --- webhooks
    @abstractmethod
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise WebhookVerificationError on a bad or stale signature."""

    @abstractmethod
    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[VendorEvent]: ...

    def webhook_event_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        """The vendor's id for this delivery, unique per account (repeats are dropped)."""
        events = self.parse_webhook(body, headers)
        return events[0].vendor_event_id if events else ""

    def webhook_reply(self, body: bytes, headers: Mapping[str, str]) -> WebhookReply | None:
        """A lifecycle answer that must be given instead of storing the event (SmartThings PING)."""
        return None
