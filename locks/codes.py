"""Writes to one code that queue nothing (DESIGN §4 code statuses, PINs): its PIN, its failure, its
confirmation, the start of a preloaded window, a late flag, a reveal. Queueing work lives in
`locks.commands` (what a command's outcome does to its code) and `locks.planning` (what should be sent).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction

from locks import pins
from locks.activity import activity_record
from locks.issues import issue_open, issues_resolve
from locks.models import AccessCode, CodeStatus, CommandState, IssueKind, Lock, LockCommand, LockIssue
from locks.transitions import code_move
from locks.troubleshooting import issue_kind_for_reason
from providers.base import Reason

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# Issues about getting a code onto the lock; a confirmed code makes them moot.
RESOLVED_WHEN_SET: tuple[str, ...] = (
    IssueKind.COMMAND_TIMEOUT,
    IssueKind.NACK,
    IssueKind.BUSY,
    IssueKind.RATE_LIMITED,
    IssueKind.VENDOR_ERROR,
    IssueKind.DUPLICATE_PIN,
    IssueKind.INVALID_PIN,
    IssueKind.SCHEDULE_INVALID,
    IssueKind.SLOTS_FULL,
    IssueKind.UNRECOGNIZED_JOB_STATE,
    IssueKind.USER_NOT_FOUND,
)
# Every status a code can fail from.
FAILABLE = (CodeStatus.SETTING, CodeStatus.REMOVING, CodeStatus.SET, CodeStatus.UNSET)


def lock_chooses_pin(lock: Lock) -> bool:
    return pins.lock_chooses_pin(lock.requirements or {})


def live_pins(lock: Lock, *, exclude_code: AccessCode | None = None) -> set[str]:
    return set(pins.live_pins_on_lock(lock, exclude_code_id=exclude_code.pk if exclude_code else None))


def fit_name(name: str, lock: Lock) -> str:
    return pins.fit_name(name, lock.requirements or {})[:64]


def code_new_pin(code: AccessCode, *, now: datetime, exclude: Iterable[str] = (), pin: str | None = None) -> str:
    """Generate a PIN, or take the one a person chose after checking it against the lock's rules and
    every live code on it (raises locks.pins.PinRejected before anything is saved or sent)."""
    taken = live_pins(code.lock, exclude_code=code) | set(exclude)
    if pin is not None:
        pins.assert_pin_usable(pin, code.lock.requirements or {}, taken)
        code.pin = pin
    else:
        code.pin = pins.generate_pin(code.lock.requirements or {}, taken=taken,
                                     default_length=code.tenant.default_code_length)
    code.guest_notified = False
    code.common_code_key = ""
    code.save(update_fields=["pin", "guest_notified", "common_code_key", "updated_at"])
    activity_record(tenant_id=code.tenant_id, verb="pin.regenerated", message=f"New PIN generated for {code.name!r}",
                    now=now, code=code)
    return code.pin


def code_record_pin(code: AccessCode, *, pin: str, now: datetime, actor: AbstractBaseUser | AnonymousUser | None = None,
                    taken: Iterable[str] = ()) -> None:
    """Record the PIN a code already has on the lock, as a person tells it (a code adopted from a lock
    that cannot read PINs back). Checked against the lock's rules and its live PINs (raises
    locks.pins.PinRejected before anything is saved); unlike a new PIN, nobody needs telling."""
    pins.assert_pin_usable(pin, code.lock.requirements or {}, live_pins(code.lock, exclude_code=code) | set(taken))
    code.pin = pin
    code.save(update_fields=["pin", "updated_at"])
    activity_record(tenant_id=code.tenant_id, verb="pin.recorded", message=f"PIN of {code.name!r} entered by staff",
                    now=now, code=code, actor=actor)


def code_fail(code: AccessCode, *, command: LockCommand | None, reason: str, detail: str, now: datetime) -> None:
    """The code failed for `reason`: an open issue says why and what to do."""
    code_move(code, old=FAILABLE, new=CodeStatus.FAILED, now=now, command=command, note=reason, last_reason=reason)
    issue_open(lock=code.lock, code=code, command=command, kind=issue_kind_for_reason(reason), now=now,
               detail=detail or f"{reason}")


def status_when_confirmed(code: AccessCode, now: datetime) -> tuple[str, bool]:
    """(status, is_scheduled_on_device) for a code the lock has just confirmed."""
    if code.lock.native_scheduling and code.starts_at is not None and now < code.starts_at:
        return CodeStatus.UNSET, True
    return CodeStatus.SET, False


def code_settle(code: AccessCode, *, command: LockCommand, vendor_code_ref: str, verification: str,
                now: datetime, note: str) -> bool:
    """setting → set (or preloaded): the lock confirmed what `command` sent."""
    status, scheduled = status_when_confirmed(code, now)
    if code_move(code, old=[CodeStatus.SETTING], new=status, now=now, command=command, note=note,
                 is_scheduled_on_device=scheduled, verification=verification, vendor_code_ref=vendor_code_ref,
                 last_reason=""):
        issues_resolve(lock=code.lock, code=code, kinds=RESOLVED_WHEN_SET, now=now, why="code confirmed")
        return True
    return False


def code_gone(code: AccessCode, *, command: LockCommand | None, now: datetime, note: str = "") -> bool:
    """removing → removed: the lock no longer holds it."""
    if code_move(code, old=[CodeStatus.REMOVING], new=CodeStatus.REMOVED, now=now, command=command, note=note,
                 is_scheduled_on_device=False, last_reason=""):
        issues_resolve(lock=code.lock, code=code, kinds=None, now=now, why="code removed")
        return True
    return False


@transaction.atomic
def code_activate_scheduled(*, code: AccessCode, now: datetime) -> bool:
    """A preloaded code on a natively scheduling lock: its window started, the lock enforces it."""
    return code_move(code, old=[CodeStatus.UNSET], new=CodeStatus.SET, now=now, note="window started",
                     is_scheduled_on_device=False)


def code_flag_late(*, code: AccessCode, now: datetime) -> LockIssue | None:
    """The code's window has begun and it is not on the lock yet: say so on the code, with why, so staff
    hear it before the guest does (a JIT lead shorter than the timeouts of the commands ahead of it on
    the one-at-a-time queue can make a healthy code late). The issue resolves when the code is set."""
    if code.status != CodeStatus.SETTING or code.starts_at is None or code.starts_at > now:
        return None
    in_flight = (
        LockCommand.objects.filter(lock_id=code.lock_id, state=CommandState.SENT).select_related("access_code").first()
    )
    if in_flight is not None and in_flight.access_code_id != code.pk:
        other = in_flight.access_code.name if in_flight.access_code else "the lock"
        # Relative, not a clock time: issue details are read in the property's zone, which this layer
        # does not format (DESIGN §7).
        sent = _minutes_before(in_flight.sent_at, code.starts_at)
        kind = IssueKind.BUSY
        detail = (f"Not on the lock at the start of its window: waiting behind command #{in_flight.pk} "
                  f"({in_flight.action} for {other!r}, sent {sent}).")
    else:
        kind = IssueKind.COMMAND_TIMEOUT
        detail = ("Not on the lock at the start of its window: the vendor has not confirmed it yet"
                  + (f" (command #{in_flight.pk} sent {_minutes_before(in_flight.sent_at, code.starts_at)})."
                     if in_flight is not None and in_flight.sent_at else "."))
    return issue_open(lock=code.lock, code=code, kind=kind, now=now, command=in_flight, detail=detail)


def _minutes_before(sent_at: datetime | None, starts_at: datetime) -> str:
    if sent_at is None:
        return "earlier"
    minutes = round((starts_at - sent_at).total_seconds() / 60)
    return f"{minutes} min before the window started" if minutes >= 0 else f"{-minutes} min after the window started"


@transaction.atomic
def code_report_failure(*, code: AccessCode, reason: str, now: datetime, detail: str = "") -> bool:
    """The vendor says a code it holds failed on the lock with no command of ours in flight (a native
    schedule that did not start, a lock that dropped it): the code fails with an issue saying why."""
    if code.status not in (CodeStatus.SET, CodeStatus.UNSET) or (
        code.status == CodeStatus.UNSET and not code.is_scheduled_on_device
    ):
        return False
    code_fail(code, command=None, reason=reason or Reason.VENDOR_ERROR, detail=detail, now=now)
    return True


def code_reveal_pin(*, code: AccessCode, actor: AbstractBaseUser | AnonymousUser | None, now: datetime) -> str:
    activity_record(tenant_id=code.tenant_id, verb="pin.revealed", message=f"PIN of {code.name!r} revealed",
                    now=now, code=code, actor=actor)
    return code.pin


def code_mark_guest_notified(
    *, code: AccessCode, actor: AbstractBaseUser | AnonymousUser | None, now: datetime
) -> None:
    AccessCode.objects.filter(pk=code.pk).update(guest_notified=True)
    code.guest_notified = True
    activity_record(tenant_id=code.tenant_id, verb="code.guest_notified", message=f"Guest told the PIN of {code.name!r}",
                    now=now, code=code, actor=actor)
