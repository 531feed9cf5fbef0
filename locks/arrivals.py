"""Arrivals (DESIGN §3 "first use", §7): which code opened the door, as the lock reports it.

Where a vendor says which code unlocked the door (Seam `lock.unlocked` with an access code, SmartThings'
`lock` event with the code slot, Nuki's log, the simulator), the adapter turns it into a `CODE_USED`
event and `locks.outcomes` hands it here: the code's `first_used_at` and its booking's `first_entry_at`
are set once (an earlier report, arriving late, moves them back). A wrong code typed at the keypad
(`CODE_DENIED`, where the vendor reports it) is written to the lock's history.

The tick asks `bookings_flag_no_entry` for stays whose guest has not opened any door N hours after
check-in (a property setting, off by default): each gets one urgent `no_entry` issue (alerts mail it)
and is never flagged again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from locks.activity import activity_record
from locks.issues import issue_open, issues_resolve
from locks.models import AccessCode, CodePurpose, CodeStatus, IssueKind, Lock
from portal.models import Booking, BookingStatus


def _code_for(lock: Lock, vendor_code_ref: str) -> AccessCode | None:
    """The code the lock names: the live one with that ref, else the latest that had it (a late report)."""
    codes = AccessCode.objects.select_related("booking").filter(lock=lock, vendor_code_ref=vendor_code_ref)
    return codes.exclude(status=CodeStatus.REMOVED).order_by("-id").first() or codes.order_by("-id").first()


@transaction.atomic
def code_record_use(*, lock: Lock, vendor_code_ref: str, occurred_at: datetime | None, now: datetime) -> AccessCode | None:
    """The lock opened with `vendor_code_ref`. Returns the code when it is one of ours."""
    code = _code_for(lock, vendor_code_ref) if vendor_code_ref else None
    if code is None:
        return None
    when = min(occurred_at or now, now)  # a lock's clock ahead of ours does not put entries in the future
    earlier = Q(first_used_at__isnull=True) | Q(first_used_at__gt=when)
    first = not code.first_used_at
    if AccessCode.objects.filter(earlier, pk=code.pk).update(first_used_at=when):
        code.first_used_at = when
        if first:
            activity_record(tenant_id=code.tenant_id, verb="code.first_used", code=code, now=now,
                            message=f"First use of code “{code.name}” on {lock.name}",
                            data={"at": when.isoformat()})
    if code.booking_id is not None and code.purpose in (CodePurpose.GUEST, CodePurpose.BACKUP):
        entered = Q(first_entry_at__isnull=True) | Q(first_entry_at__gt=when)
        Booking.objects.filter(entered, pk=code.booking_id).update(first_entry_at=when)
        issues_resolve(lock=lock, code=code, kinds=[IssueKind.NO_ENTRY], now=now, why="the guest opened the door")
        _resolve_no_entry_elsewhere(code, booking_id=code.booking_id, now=now)
    return code


def _resolve_no_entry_elsewhere(code: AccessCode, *, booking_id: int, now: datetime) -> None:
    """The no-entry issue sits on the booking's first door; an entry by another door closes it too."""
    others = AccessCode.objects.filter(booking_id=booking_id, issues__kind=IssueKind.NO_ENTRY).exclude(
        pk=code.pk).select_related("lock").distinct()
    for other in others:
        issues_resolve(lock=other.lock, code=other, kinds=[IssueKind.NO_ENTRY], now=now,
                       why="the guest opened another door")


def code_record_denied(*, lock: Lock, vendor_code_ref: str, detail: str, now: datetime) -> None:
    """A code was refused at the keypad. The vendor never tells us the digits typed, and we never write any."""
    code = _code_for(lock, vendor_code_ref) if vendor_code_ref else None
    whose = f" (the vendor names code “{code.name}”)" if code is not None else ""
    activity_record(tenant_id=lock.tenant_id, verb="lock.wrong_code", lock_id=lock.pk, code=code, now=now,
                    message=f"A wrong code was tried at {lock.name}{whose}", data={"detail": detail[:200]})


def _due_no_entry(booking: Booking, now: datetime) -> bool:
    hours = booking.property.no_entry_alert_hours
    return hours is not None and booking.check_in + timedelta(hours=hours) <= now


def bookings_flag_no_entry(*, now: datetime, limit: int) -> int:
    """The tick's step: stays under way whose guest has not entered N hours after check-in, flagged once.
    Only properties that asked for it are read, and only stays under way without an entry or a flag."""
    stays = (
        Booking.objects.filter(
            status=BookingStatus.CONFIRMED, first_entry_at__isnull=True, no_entry_alerted_at__isnull=True,
            property__no_entry_alert_hours__isnull=False, check_in__lte=now, check_out__gt=now,
        ).select_related("property").order_by("check_in", "id")[:limit]
    )
    flagged = 0
    for booking in stays:
        if _due_no_entry(booking, now) and booking_flag_no_entry(booking=booking, now=now):
            flagged += 1
    return flagged


@transaction.atomic
def booking_flag_no_entry(*, booking: Booking, now: datetime) -> bool:
    """One `no_entry` issue for the stay, on its first door; claimed so two workers never both open it."""
    if not Booking.objects.filter(pk=booking.pk, no_entry_alerted_at__isnull=True,
                                  first_entry_at__isnull=True).update(no_entry_alerted_at=now):
        return False
    hours = booking.property.no_entry_alert_hours
    code = (AccessCode.objects.select_related("lock").filter(booking=booking, purpose=CodePurpose.GUEST)
            .order_by("lock__name", "id").first())
    detail = f"{booking.guest_name} has not opened any door {hours} h after check-in."
    if code is None:
        activity_record(tenant_id=booking.tenant_id, verb="booking.no_entry", booking_id=booking.pk, now=now,
                        message=detail)
        return True
    issue_open(lock=code.lock, code=code, kind=IssueKind.NO_ENTRY, now=now, our_inference=detail,
               data={"booking": booking.pk, "hours": hours})
    return True
