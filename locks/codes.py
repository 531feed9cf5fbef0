"""Writes to one code that queue nothing (DESIGN §4 code statuses, PINs): its PIN (shared by a booking's
doors), its failure, its confirmation, the start of a preloaded window, a late or overstay flag, a reveal. Queueing work lives in
`locks.commands` (what a command's outcome does to its code) and `locks.planning` (what should be sent).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import transaction

from locks import pins
from locks.activity import activity_record
from locks.conf import engine
from locks.issues import issue_open, issues_resolve
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    Lock,
    LockCommand,
    LockIssue,
    Verification,
)
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


def pin_siblings(code: AccessCode) -> list[AccessCode]:
    """The codes that share `code`'s PIN on the booking's other doors (its `common_code_key`), still live."""
    if not code.common_code_key:
        return []
    return list(
        AccessCode.objects.select_related("lock", "tenant")
        .filter(booking_id=code.booking_id, common_code_key=code.common_code_key)
        .exclude(pk=code.pk).exclude(status__in=[CodeStatus.REMOVING, CodeStatus.REMOVED]).order_by("id")
    )


def pins_choose(
    group: list[AccessCode], *, exclude: Iterable[str] = (), pin: str | None = None
) -> dict[int, str]:
    """A new PIN for each code of `group` (a code and its siblings on the booking's other doors): the one a
    person chose, checked against each lock's rules and every live code on it (raises
    locks.pins.PinRejected), or a generated one — common to every door where one is valid and free on all,
    else one per door. `exclude`: PINs that count as taken on every door too. Nothing is saved."""
    code = group[0]
    taken = [live_pins(member.lock, exclude_code=member) | set(exclude) for member in group]
    requirements = [member.lock.requirements or {} for member in group]
    if pin is not None:
        for member, reqs, members_taken in zip(group, requirements, taken, strict=True):
            try:
                pins.assert_pin_usable(pin, reqs, members_taken)
            except pins.PinRejected as exc:
                where = f" on {member.lock.name}" if len(group) > 1 else ""
                raise pins.PinRejected([f"{error[:-1]}{where}." for error in exc.errors]) from exc
        return {member.pk: pin for member in group}
    length = code.tenant.default_code_length
    common = pins.common_pin(requirements, taken_per_lock=taken, default_length=length) if len(group) > 1 else None
    if common is not None or len(group) == 1:
        return {member.pk: common or pins.generate_pin(requirements[0], taken=taken[0], default_length=length)
                for member in group}
    return {member.pk: pins.generate_pin(reqs, taken=members_taken, default_length=length)
            for member, reqs, members_taken in zip(group, requirements, taken, strict=True)}


def pin_split_flag(group: list[AccessCode], *, now: datetime) -> None:
    """The doors of one guest got different PINs: each code gets a `pin_split` issue saying so."""
    doors = ", ".join(member.lock.name for member in group)
    for member in group:
        issue_open(lock=member.lock, code=member, kind=IssueKind.PIN_SPLIT, now=now, our_inference=(
            f"No single new PIN is valid and free on every door ({doors}), so each door got its own PIN; "
            "the guest must be told each one."))


def code_new_pin(
    code: AccessCode, *, now: datetime, exclude: Iterable[str] = (), pin: str | None = None
) -> list[AccessCode]:
    """Generate a PIN, or take the one a person chose after checking it against the lock's rules and
    every live code on it (raises locks.pins.PinRejected before anything is saved or sent).

    A booking's doors share one PIN (`common_code_key`): the new PIN goes to every one of them together,
    or — when no PIN is valid and free on every door — each door gets its own and a `pin_split` issue
    says so. Returns the codes whose PIN changed, `code` first; the caller sends them."""
    group = [code, *pin_siblings(code)]
    chosen = pins_choose(group, exclude=exclude, pin=pin)
    split = len(set(chosen.values())) > 1
    for member in group:
        member.pin = chosen[member.pk]
        member.guest_notified = False
        if split:
            member.common_code_key = ""
        member.save(update_fields=["pin", "guest_notified", "common_code_key", "updated_at"])
        activity_record(tenant_id=member.tenant_id, verb="pin.regenerated",
                        message=f"New PIN generated for {member.name!r}", now=now, code=member)
    if split:
        pin_split_flag(group, now=now)
    return group


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


def code_fail(code: AccessCode, *, command: LockCommand | None, reason: str, detail: str, now: datetime,
              from_vendor: bool = False) -> None:
    """The code failed for `reason`: an open issue says why and what to do. `from_vendor`: `detail` is
    the vendor's own words (else it is Lockstep's)."""
    code_move(code, old=FAILABLE, new=CodeStatus.FAILED, now=now, command=command, note=reason, last_reason=reason)
    issue_open(lock=code.lock, code=code, command=command, kind=issue_kind_for_reason(reason), now=now,
               detail=detail or f"{reason}", **said(detail, from_vendor=from_vendor))


class Said(TypedDict, total=False):
    vendor_said: str
    our_inference: str


def said(detail: str, *, from_vendor: bool) -> Said:
    """An issue's words, labelled by who said them: the vendor, or Lockstep's own inference."""
    return Said(vendor_said=detail) if from_vendor else Said(our_inference=detail)


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
    """removing → removed: the lock no longer holds it. A code taken off only until its moved window comes
    near (`comes_back`) goes back to unset instead, and the tick programs it again at its program_at."""
    back = code.comes_back and code.ends_at is not None and code.ends_at > now
    new = CodeStatus.UNSET if back else CodeStatus.REMOVED
    extra: dict[str, Any] = {"vendor_code_ref": "", "verification": Verification.NONE} if back else {}
    if code_move(code, old=[CodeStatus.REMOVING], new=new, now=now, command=command,
                 note=note or ("off the lock until its window" if back else ""), is_scheduled_on_device=False,
                 last_reason="", comes_back=False, **extra):
        issues_resolve(lock=code.lock, code=code, kinds=None, now=now, why="code removed")
        return True
    return False


@transaction.atomic
def code_activate_scheduled(*, code: AccessCode, now: datetime) -> bool:
    """A preloaded code on a natively scheduling lock: its window started, the lock enforces it."""
    return code_move(code, old=[CodeStatus.UNSET], new=CodeStatus.SET, now=now, note="window started",
                     is_scheduled_on_device=False)


def code_on_its_way(code: AccessCode, *, now: datetime) -> bool:
    """A first attempt sent (or waiting behind a command sent) less than the vendor's normal latency ago is
    on its way, not late: vendors take tens of seconds to confirm even when all is well."""
    in_flight = LockCommand.objects.filter(lock_id=code.lock_id, state=CommandState.SENT).first()
    if in_flight is None or in_flight.sent_at is None:
        return False  # nothing is moving on the lock: whatever is queued is not on its way
    own = code.commands.filter(state__in=[CommandState.QUEUED, CommandState.SENT]).order_by("-id").first()
    if own is None or own.attempt > 1:
        return False
    return now - in_flight.sent_at < engine().normal_latency(code.lock.provider_account.vendor)


def code_flag_late(*, code: AccessCode, now: datetime) -> LockIssue | None:
    """The code's window has begun and it is not on the lock yet: say so on the code, with why, so staff
    hear it before the guest does (a JIT lead shorter than the timeouts of the commands ahead of it on
    the one-at-a-time queue can make a healthy code late). It needs no worker: the tick calls this every
    minute. What it says is Lockstep's inference, never the vendor's words. The issue resolves when the
    code is set."""
    if code.status != CodeStatus.SETTING or code.starts_at is None or code.starts_at > now:
        return None
    if code_on_its_way(code, now=now):
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
    return issue_open(lock=code.lock, code=code, kind=kind, now=now, command=in_flight, our_inference=detail)


def code_flag_overstay(*, code: AccessCode, now: datetime) -> LockIssue:
    """The code's window is over and the lock may still hold it: the guest's PIN may still open the door.
    The issue resolves when the lock confirms the code gone (`code_gone`)."""
    what = "its removal has not been confirmed" if code.status == CodeStatus.REMOVING else "its removal failed"
    ended = f"{code.ends_at:%Y-%m-%d %H:%M} UTC" if code.ends_at else "its end"
    return issue_open(lock=code.lock, code=code, kind=IssueKind.OVERSTAY, now=now, our_inference=(
        f"The stay ended {ended} and {what}: the guest's PIN may still open the door."
        + (f" Last reason: {code.last_reason}." if code.last_reason else "")))


def codes_overstaying(*, now: datetime, limit: int) -> list[AccessCode]:
    """Codes past their end plus the grace that may still be on the lock (being removed, or failed with
    a vendor ref) and carry no open overstay issue yet. Rides the `code_may_overstay` partial index."""
    flagged = LockIssue.objects.filter(kind=IssueKind.OVERSTAY, status=IssueStatus.OPEN).values("access_code_id")
    return list(
        AccessCode.objects.select_related("lock", "tenant")
        .filter(status__in=[CodeStatus.REMOVING, CodeStatus.FAILED], ends_at__lte=now - engine().overstay_grace)
        .exclude(status=CodeStatus.FAILED, vendor_code_ref="")
        .exclude(pk__in=flagged)
        .order_by("ends_at")[:limit]
    )


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
    code_fail(code, command=None, reason=reason or Reason.VENDOR_ERROR, detail=detail, now=now, from_vendor=True)
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
