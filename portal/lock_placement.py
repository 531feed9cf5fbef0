"""Where a lock is and whether Lockstep manages it (DESIGN §7: imported locks are assigned, moved,
renamed): assign an unassigned lock to a property, move it, rename it, or stop managing it.

A lock's codes follow its property: moving a lock takes the old property's guest codes off it (through the
queue) and plans the new property's future stays onto it. Stopping management removes its codes first
(through the queue), or, on explicit choice, leaves them on the lock and forgets them.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from locks.activity import activity_record
from locks.commands import commands_cancel_queued
from locks.models import SHOWN_CODE_STATUSES, AccessCode, CodeStatus, Lock
from locks.planning import code_remove, codes_sync_for_booking
from locks.transitions import code_move
from portal.models import Booking, BookingStatus, Property

NAME_MAX = 120


def _live_codes(lock: Lock) -> list[AccessCode]:
    return list(AccessCode.objects.select_related("lock", "tenant").filter(lock=lock, status__in=SHOWN_CODE_STATUSES)
                .order_by("pk"))


@transaction.atomic
def lock_place(
    *, lock: Lock, property: Property | None, name: str, actor: User | None, now: datetime
) -> Lock:
    """Assign/move (`property`, None = unassigned) and rename a lock in one step."""
    lock = Lock.objects.select_for_update(of=("self",)).select_related("property").get(pk=lock.pk)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the lock."})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": f"At most {NAME_MAX} characters."})
    if property is not None and (property.tenant_id != lock.tenant_id or property.archived_at is not None):
        raise ValidationError({"property": "Choose one of your properties."})
    if not lock.managed:
        raise ValidationError("This lock is no longer managed; import the account's devices to bring it back.")
    old = lock.property
    if name != lock.name:
        before = lock.name
        Lock.objects.filter(pk=lock.pk).update(name=name)
        lock.name = name
        activity_record(tenant_id=lock.tenant_id, actor=actor, verb="lock.renamed", now=now, lock_id=lock.pk,
                        message=f"{actor} renamed {before} to {name}")
    if (old.pk if old else None) != (property.pk if property else None):
        Lock.objects.filter(pk=lock.pk).update(property=property)
        lock.property = property
        where = property.name if property else "unassigned"
        activity_record(tenant_id=lock.tenant_id, actor=actor, verb="lock.moved", now=now, lock_id=lock.pk,
                        message=f"{actor} moved {lock.name} from {old.name if old else 'unassigned'} to {where}",
                        data={"from": old.pk if old else None, "to": property.pk if property else None})
        _follow_property(lock, property, now=now, actor=actor)
    return lock


def _follow_property(lock: Lock, prop: Property | None, *, now: datetime, actor: User | None) -> None:
    """The stays whose codes are on this lock, and the new property's future stays, re-planned."""
    booking_ids = {code.booking_id for code in _live_codes(lock) if code.booking_id}
    bookings = Booking.objects.filter(pk__in=booking_ids)
    if prop is not None:
        bookings = bookings | Booking.objects.filter(property=prop, status=BookingStatus.CONFIRMED, check_out__gt=now)
    for booking in bookings.select_related("property__tenant", "tenant").distinct().order_by("check_in", "pk"):
        codes_sync_for_booking(booking=booking, now=now, actor=actor)


@transaction.atomic
def lock_release(*, lock: Lock, keep_codes: bool, actor: User | None, now: datetime) -> Lock:
    """Stop managing a lock. Its codes are removed through its queue first, unless `keep_codes`: then they
    stay on the lock and Lockstep forgets them (marked removed here, nothing sent)."""
    lock = Lock.objects.select_for_update(of=("self",)).select_related("property").get(pk=lock.pk)
    if not lock.managed:
        return lock
    for code in _live_codes(lock):
        if keep_codes:
            commands_cancel_queued(code=code, now=now)
            code_move(code, old=[code.status], new=CodeStatus.REMOVED, now=now, actor=actor,
                      note="left on the lock: no longer managed")
        else:
            code_remove(code=code, now=now, actor=actor, note="lock no longer managed")
    Lock.objects.filter(pk=lock.pk).update(property=None, managed=False)
    old = lock.property
    lock.property, lock.managed = None, False
    activity_record(
        tenant_id=lock.tenant_id, actor=actor, verb="lock.released", now=now, lock_id=lock.pk,
        message=f"{actor} stopped managing {lock.name}" + (f" (was at {old.name})" if old else "")
        + ("; its codes were left on the lock" if keep_codes else "; its codes are being removed"),
        data={"keep_codes": keep_codes},
    )
    return lock
