"""Booking → desired codes, and putting codes in motion (DESIGN §4 "Windows and timing", "PINs").

`codes_sync_for_booking` makes a booking's codes what the booking wants (one per lock of its property,
with its window and PIN); `code_program`, `code_push_update`, `code_requeue_create` and `code_remove`
move one code and queue the command that gets the lock there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction

from locks import pins
from locks.activity import activity_record
from locks.codes import code_fail, fit_name, live_pins, lock_chooses_pin
from locks.commands import command_queue, commands_cancel_queued, enqueue_dispatch
from locks.issues import issues_resolve
from locks.lead import lock_lead
from locks.models import (
    AccessCode,
    CodePurpose,
    CodeStatus,
    CodeType,
    CommandAction,
    Lock,
    Verification,
)
from locks.transitions import code_move
from providers.base import Reason

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from portal.models import Booking

    Actor = AbstractBaseUser | AnonymousUser | None


def code_window(*, booking: Booking, lock: Lock, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(starts_at, ends_at, program_at) for a booking's code on `lock` (DESIGN §4 windows and timing).

    DST-safe: buffers and leads are real elapsed time, so the arithmetic is done in UTC. (Python adds to
    a datetime in its own zone by wall clock, which would shift a 72 h lead by an hour across a change,
    and would make the answer depend on whether the booking came from a form or from the database.)"""
    prop = booking.property
    starts_at = booking.check_in.astimezone(UTC) - timedelta(minutes=prop.effective_before_minutes)
    ends_at = booking.check_out.astimezone(UTC) + timedelta(minutes=prop.effective_after_minutes)
    return starts_at, ends_at, program_time(lock=lock, starts_at=starts_at, now=now)


def program_time(*, lock: Lock, starts_at: datetime | None, now: datetime) -> datetime:
    """When a code starting at `starts_at` goes to `lock`: the native preload or the lock's (adaptive)
    just-in-time lead before its start (locks/lead.py), never before now; an ongoing code (no start) goes now."""
    if starts_at is None:
        return now
    return max(starts_at.astimezone(UTC) - lock_lead(lock), now)


def _never_sent(code: AccessCode) -> bool:
    return not code.is_scheduled_on_device and not code.vendor_code_ref and not code.commands.filter(
        sent_at__isnull=False
    ).exists()


@transaction.atomic
def code_program(*, code: AccessCode, now: datetime, actor: Actor = None, dispatch: bool = True) -> bool:
    """unset → setting: the code is due (its program_at has come), queue its create. `dispatch=False`
    when the caller dispatches the lock itself (the tick)."""
    if not code_move(code, old=[CodeStatus.UNSET], new=CodeStatus.SETTING, now=now, actor=actor, note="due"):
        return False
    command_queue(code, CommandAction.CREATE, now=now, actor=actor)
    if dispatch:
        enqueue_dispatch(code.lock_id)
    return True


@transaction.atomic
def code_requeue_create(*, code: AccessCode, now: datetime, actor: Actor = None, note: str = "") -> None:
    """Program a code again from scratch (missing on the lock, lock cleared, failed and retried)."""
    code_move(code, old=[CodeStatus.SET, CodeStatus.UNSET, CodeStatus.FAILED, CodeStatus.SETTING],
              new=CodeStatus.SETTING, now=now, actor=actor, note=note, last_reason="")
    if code.status == CodeStatus.SETTING:
        command_queue(code, CommandAction.CREATE, now=now, actor=actor)
        enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_push_update(*, code: AccessCode, now: datetime, actor: Actor = None) -> None:
    """The desired state of a code that is (or is being put) on the lock changed: queue an update."""
    code_move(code, old=[CodeStatus.SET, CodeStatus.UNSET], new=CodeStatus.SETTING, now=now, actor=actor,
              note="changed")
    if code.status == CodeStatus.SETTING:
        command_queue(code, CommandAction.UPDATE, now=now, actor=actor)
        enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_resend(*, code: AccessCode, now: datetime, actor: Actor = None, note: str) -> None:
    """failed → setting: send the code's current desired state again (an update if the lock knows it)."""
    if code_move(code, old=[CodeStatus.FAILED], new=CodeStatus.SETTING, now=now, actor=actor, note=note,
                 last_reason=""):
        command_queue(code, CommandAction.UPDATE if code.vendor_code_ref else CommandAction.CREATE, now=now,
                      actor=actor)
        enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_remove(*, code: AccessCode, now: datetime, actor: Actor = None, note: str = "") -> None:
    """Take a code off its lock: a delete if it may be there, straight to removed if it never left us."""
    if code.status == CodeStatus.REMOVING and code.comes_back:
        # It was coming back for a moved stay; now it is not wanted at all: gone for good once deleted.
        AccessCode.objects.filter(pk=code.pk).update(comes_back=False)
        code.comes_back = False
    if code.status in (CodeStatus.REMOVED, CodeStatus.REMOVING):
        return
    not_on_lock = code.status == CodeStatus.UNSET and not code.is_scheduled_on_device and not code.vendor_code_ref
    if _never_sent(code) or not_on_lock or (code.status == CodeStatus.FAILED and not code.vendor_code_ref):
        commands_cancel_queued(code=code, now=now)
        code_move(code, old=[CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.FAILED], new=CodeStatus.REMOVED,
                  now=now, actor=actor, note=note or "never sent")
        issues_resolve(lock=code.lock, code=code, kinds=None, now=now, why="code removed")
        return
    if code_move(code, old=[CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET, CodeStatus.FAILED],
                 new=CodeStatus.REMOVING, now=now, actor=actor, note=note):
        commands_cancel_queued(code=code, now=now, actions=(CommandAction.CREATE,))
        command_queue(code, CommandAction.DELETE, now=now, actor=actor)
        enqueue_dispatch(code.lock_id)


def lock_reprogram(*, lock: Lock, now: datetime, actor: Actor = None) -> int:
    """After the lock was cleared: every live code that should be on it is programmed again from scratch
    (ended ones are done with). Returns how many were queued."""
    queued = 0
    live = AccessCode.objects.select_related("lock", "tenant").filter(
        lock=lock, status__in=[CodeStatus.SETTING, CodeStatus.SET, CodeStatus.UNSET, CodeStatus.FAILED]
    )
    for code in live:
        if code.status == CodeStatus.UNSET and not code.is_scheduled_on_device:
            continue  # not due yet: the tick programs it when its time comes
        if code.ends_at is not None and code.ends_at <= now:
            code_move(code, old=[code.status], new=CodeStatus.REMOVED, now=now, actor=actor, note="cleared")
            continue
        AccessCode.objects.filter(pk=code.pk).update(
            vendor_code_ref="", is_scheduled_on_device=False, verification=Verification.NONE
        )
        code.vendor_code_ref, code.is_scheduled_on_device = "", False
        if not code.pin and not lock_chooses_pin(lock):
            # A create with an empty PIN is refused (invalid_pin) or, worse, gets a PIN nobody knows: the
            # code's holder is locked out either way. Say so and let a person give it a PIN.
            code_fail(code, command=None, reason=Reason.INVALID_PIN, detail=PIN_UNKNOWN_DETAIL, now=now)
            continue
        code_requeue_create(code=code, now=now, actor=actor, note="reprogram")
        queued += 1
    return queued


PIN_UNKNOWN_DETAIL = (
    "Lockstep does not know this code's PIN (the lock cannot read PINs back), so it could not be put back "
    "after the lock was cleared. Give it a PIN with New PIN and tell its holder."
)


@transaction.atomic
def codes_sync_for_booking(*, booking: Booking, now: datetime, actor: Actor = None) -> None:
    """Make the booking's AccessCodes what the booking wants: one per lock of its property. Idempotent."""
    from portal.models import BookingStatus

    codes = list(
        AccessCode.objects.select_related("lock", "tenant").filter(booking=booking)
        .exclude(status=CodeStatus.REMOVED).order_by("id")
    )
    locks = list(Lock.objects.select_related("tenant").filter(property_id=booking.property_id).order_by("id"))
    # An archived property keeps its history but puts no codes on any lock.
    wanted = booking.status == BookingStatus.CONFIRMED and booking.property.archived_at is None
    lock_ids = {lock.pk for lock in locks}
    # Backup codes handed to the stay (locks.backup) are already on the lock: they only end with it.
    backups = [code for code in codes if code.purpose == CodePurpose.BACKUP]
    codes = [code for code in codes if code.purpose != CodePurpose.BACKUP]
    _backups_follow_booking(backups, booking=booking, wanted=wanted, lock_ids=lock_ids, now=now, actor=actor)
    for code in codes:
        if not wanted or code.lock_id not in lock_ids:
            note = "moved" if wanted else ("property archived" if booking.status == BookingStatus.CONFIRMED
                                           else "booking cancelled")
            code_remove(code=code, now=now, actor=actor, note=note)
    if not wanted:
        return
    # Usually one code per door; two while a new PIN goes on beside the one the guest knows (locks/pin_change.py):
    # both follow the stay until the guest is told and the old one comes off.
    by_lock: dict[int, list[AccessCode]] = {}
    for code in codes:
        if code.lock_id in lock_ids:
            by_lock.setdefault(code.lock_id, []).append(code)
    missing = []
    for lock in locks:
        starts_at, ends_at, program_at = code_window(booking=booking, lock=lock, now=now)
        if lock.pk not in by_lock:
            if ends_at > now:
                missing.append(lock)
            continue
        for code in by_lock[lock.pk]:
            _code_follow_booking(code, booking=booking, starts_at=starts_at, ends_at=ends_at,
                                 program_at=program_at, now=now, actor=actor)
    if missing:
        _codes_create(booking, missing, now=now, actor=actor)


def _backups_follow_booking(codes: list[AccessCode], *, booking: Booking, wanted: bool, lock_ids: set[int],
                            now: datetime, actor: Actor) -> None:
    for code in codes:
        if code.status == CodeStatus.REMOVING:
            continue
        ends_at = code_window(booking=booking, lock=code.lock, now=now)[1]
        if not wanted or code.lock_id not in lock_ids or ends_at <= now:
            code_remove(code=code, now=now, actor=actor, note="booking cancelled" if not wanted else "moved")
        elif code.ends_at != ends_at:
            AccessCode.objects.filter(pk=code.pk).update(ends_at=ends_at, updated_at=now)


def _pins_for_locks(booking: Booking, locks: list[Lock]) -> tuple[dict[int, str], str]:
    """PIN per lock for a booking's new codes, and the common_code_key when one PIN serves them all.
    A lock missing from the answer either picks its own PIN or has no free PIN left."""
    settable = [lock for lock in locks if not lock_chooses_pin(lock)]
    if not settable:
        return {}, ""
    taken = {lock.pk: live_pins(lock) for lock in settable}
    common_key = f"booking-{booking.pk}" if len(settable) > 1 else ""
    if booking.property.effective_pin_policy == "phone_last4" and booking.guest_phone:
        phone = {lock.pk: pins.phone_pin(booking.guest_phone, lock.requirements or {}, taken=taken[lock.pk])
                 for lock in settable}
        if None not in phone.values() and len(set(phone.values())) == 1:
            return {pk: str(pin) for pk, pin in phone.items()}, common_key
    return pins_for_locks(settable, taken=taken, default_length=booking.tenant.default_code_length,
                          common_key=common_key)


def pins_for_locks(
    settable: list[Lock], *, taken: dict[int, set[str]], default_length: int, common_key: str
) -> tuple[dict[int, str], str]:
    """One PIN valid and free on every lock in `settable` when there is one (with `common_key`), else a
    PIN per lock (no key); a lock with no free PIN left is missing from the answer."""
    common = pins.common_pin(
        [lock.requirements or {} for lock in settable],
        taken_per_lock=[taken[lock.pk] for lock in settable],
        default_length=default_length,
    )
    if common:
        return {lock.pk: common for lock in settable}, common_key
    chosen: dict[int, str] = {}
    for lock in settable:
        try:
            chosen[lock.pk] = pins.generate_pin(lock.requirements or {}, taken=taken[lock.pk],
                                                default_length=default_length)
        except pins.NoPinAvailable:
            continue
    return chosen, ""


def _codes_create(booking: Booking, locks: list[Lock], *, now: datetime, actor: Actor) -> None:
    pins_by_lock, common_key = _pins_for_locks(booking, locks)
    for lock in locks:
        starts_at, ends_at, program_at = code_window(booking=booking, lock=lock, now=now)
        code = AccessCode.objects.create(
            tenant_id=booking.tenant_id, lock=lock, booking=booking, purpose=CodePurpose.GUEST,
            code_type=CodeType.TIME_BOUND, name=fit_name(booking.guest_name, lock),
            pin=pins_by_lock.get(lock.pk, ""), common_code_key=common_key if lock.pk in pins_by_lock else "",
            starts_at=starts_at, ends_at=ends_at, program_at=program_at,
        )
        activity_record(
            tenant_id=booking.tenant_id, verb="code.created",
            # Times stay in `data` and are written in the property's zone where they are shown (DESIGN §7).
            message=f"Code for {booking.guest_name} on {lock.name} planned",
            now=now, code=code, actor=actor,
            data={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
                  "program_at": program_at.isoformat()},
        )
        if not code.pin and not lock_chooses_pin(lock):
            code_fail(code, command=None, reason=Reason.SLOTS_FULL, now=now,
                      detail="No free PIN valid for this lock was found; remove old codes or widen its rules.")
        elif program_at <= now:
            code_program(code=code, now=now, actor=actor)


def _code_follow_booking(
    code: AccessCode,
    *,
    booking: Booking,
    starts_at: datetime,
    ends_at: datetime,
    program_at: datetime,
    now: datetime,
    actor: Actor,
) -> None:
    code_follow_window(code, holder=booking.guest_name, starts_at=starts_at, ends_at=ends_at, program_at=program_at,
                       now=now, actor=actor)


def code_follow_window(
    code: AccessCode,
    *,
    holder: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    program_at: datetime,
    now: datetime,
    actor: Actor,
) -> None:
    """Give a code a new window (None, None: ongoing) and holder's name, and move it on the lock to match:
    pushed as an update, taken off until due, programmed now, or removed when the window is over."""
    name = fit_name(holder, code.lock)
    window_changed = (code.starts_at, code.ends_at) != (starts_at, ends_at)
    if not window_changed and code.name == name:
        return
    if code.status == CodeStatus.REMOVING and not code.comes_back:
        return  # already on its way out (ended); a new stay gets new codes
    if ends_at is not None and ends_at <= now:
        code_remove(code=code, now=now, actor=actor, note="window ended")
        return
    # Windows are a security boundary: a lock that does not enforce the window itself must not hold the
    # code before its programming time. A stay moved later takes it off now; the tick programs it again.
    # (Only a later start: a code put on early by a lead that has shrunk since stays for a rename or an
    # earlier start — it went on within the lead of its time, so within the tenant's maximum.)
    starts_later = starts_at is not None and (code.starts_at is None or starts_at > code.starts_at)
    leaves_lock = (not code.lock.native_scheduling and program_at > now and starts_later
                   and code.status in (CodeStatus.SETTING, CodeStatus.SET))
    not_yet_programmed = code.status == CodeStatus.UNSET and not code.is_scheduled_on_device
    fields: dict[str, Any] = {"starts_at": starts_at, "ends_at": ends_at, "name": name, "updated_at": now}
    if not_yet_programmed or leaves_lock or code.comes_back:
        fields["program_at"] = program_at
    AccessCode.objects.filter(pk=code.pk).update(**fields)
    for field_name, value in fields.items():
        setattr(code, field_name, value)
    activity_record(
        tenant_id=code.tenant_id, verb="code.changed",
        message=f"Code for {holder} on {code.lock.name} moved to a new window",
        now=now, code=code, actor=actor,
        data={"starts_at": starts_at.isoformat() if starts_at else None,
              "ends_at": ends_at.isoformat() if ends_at else None},
    )
    if code.comes_back:
        return  # its delete is under way; the confirmed delete puts it back to unset for the new time
    if leaves_lock:
        _code_take_off_until_due(code, now=now, actor=actor)
    elif not_yet_programmed:
        if program_at <= now:
            code_program(code=code, now=now, actor=actor)
    elif code.status in (CodeStatus.SETTING, CodeStatus.SET, CodeStatus.UNSET):
        code_push_update(code=code, now=now, actor=actor)


@transaction.atomic
def _code_take_off_until_due(code: AccessCode, *, now: datetime, actor: Actor) -> None:
    """Off the lock now, back on at its program_at: never sent → simply unset again; otherwise a delete,
    and the confirmed delete returns it to unset (`comes_back`)."""
    if _never_sent(code):
        commands_cancel_queued(code=code, now=now)
        code_move(code, old=[CodeStatus.SETTING], new=CodeStatus.UNSET, now=now, actor=actor, note="moved later")
        return
    if code_move(code, old=[CodeStatus.SETTING, CodeStatus.SET], new=CodeStatus.REMOVING, now=now, actor=actor,
                 note="moved later: off the lock until its window", comes_back=True):
        commands_cancel_queued(code=code, now=now, actions=(CommandAction.CREATE, CommandAction.UPDATE))
        command_queue(code, CommandAction.DELETE, now=now, actor=actor)
        enqueue_dispatch(code.lock_id)
