"""Backup codes (DESIGN §3 AccessCode purpose `backup`): a pool of codes kept programmed on each lock of a
property that asks for one (`Property.backup_pool_size`), so a guest whose own code failed can be given one
that is already on the door.

The tick keeps each pool topped up (`backup_pools_top_up`). Staff hand one to a booking from the booking
page (`backup_code_hand_out`): the code joins the booking, ends with the stay (the tick removes it like any
ended code), follows the stay if it moves (`locks.planning.codes_sync_for_booking`), and the pool is
topped up at once so the lock keeps its spare.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q

from locks.activity import activity_record
from locks.models import AccessCode, CodePurpose, CodeStatus, CodeType, Lock
from locks.people import codes_make

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from portal.models import Booking

    Actor = AbstractBaseUser | AnonymousUser | None

BACKUP_HOLDER = "Backup"
POOL_STATUSES = (CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET, CodeStatus.FAILED)


def locks_with_a_ready_backup(booking: Booking) -> list[Lock]:
    """The booking's doors that hold a backup code ready to hand out (programmed and confirmed)."""
    return list(Lock.objects.filter(
        property_id=booking.property_id, managed=True, access_codes__purpose=CodePurpose.BACKUP,
        access_codes__booking__isnull=True, access_codes__status=CodeStatus.SET,
    ).distinct().order_by("name"))


def pool(lock: Lock) -> list[AccessCode]:
    """The lock's backup codes not handed out yet (oldest first)."""
    return list(AccessCode.objects.filter(lock=lock, purpose=CodePurpose.BACKUP, booking__isnull=True,
                                          status__in=POOL_STATUSES).order_by("id"))


def backup_pool_top_up(*, lock: Lock, now: datetime, actor: Actor = None) -> int:
    """Make the lock's pool its property's size again; returns how many codes were made."""
    prop = lock.property
    if prop is None or prop.archived_at is not None or not lock.managed:
        return 0
    made = 0
    for _ in range(prop.backup_pool_size - len(pool(lock))):
        try:
            codes_make([lock], purpose=CodePurpose.BACKUP, holder=BACKUP_HOLDER, pin=None, starts_at=None,
                       ends_at=None, key="", keep_key=False, actor=actor, now=now)
        except ValidationError:
            break  # no free PIN: the lock is full; guests' codes come first
        made += 1
    return made


def backup_pools_top_up(*, now: datetime, limit: int) -> int:
    """The tick's step: every lock whose pool is short of its property's size gets topped up."""
    short = (
        Lock.objects.filter(managed=True, property__archived_at__isnull=True, property__backup_pool_size__gt=0)
        .annotate(pooled=Count("access_codes", filter=Q(
            access_codes__purpose=CodePurpose.BACKUP, access_codes__booking__isnull=True,
            access_codes__status__in=POOL_STATUSES)))
        .filter(pooled__lt=F("property__backup_pool_size"))
        .select_related("property", "tenant").order_by("id")[:limit]
    )
    return sum(backup_pool_top_up(lock=lock, now=now) for lock in short)


def backup_window_end(booking: Booking) -> datetime:
    """A handed-out backup code ends when the stay's own code would."""
    return booking.check_out.astimezone(UTC) + timedelta(minutes=booking.property.effective_after_minutes)


@transaction.atomic
def backup_code_hand_out(*, booking: Booking, lock: Lock, actor: Actor, now: datetime) -> AccessCode:
    """Give the booking a backup code that is on `lock` now. ValidationError when there is none."""
    from portal.models import BookingStatus

    if lock.property_id != booking.property_id:
        raise ValidationError("This lock is not at the booking's property.")
    if booking.status != BookingStatus.CONFIRMED or booking.check_out <= now:
        raise ValidationError("Only a confirmed stay that has not ended can get a backup code.")
    code = (AccessCode.objects.select_for_update(skip_locked=True)
            .filter(lock=lock, purpose=CodePurpose.BACKUP, booking__isnull=True, status=CodeStatus.SET)
            .order_by("id").first())
    if code is None:
        raise ValidationError(f"No backup code is ready on {lock.name}.")
    ends_at = backup_window_end(booking)
    AccessCode.objects.filter(pk=code.pk).update(booking=booking, code_type=CodeType.TIME_BOUND, starts_at=now,
                                                 ends_at=ends_at, holder_name=booking.guest_name, updated_at=now)
    code.refresh_from_db()
    activity_record(tenant_id=code.tenant_id, verb="code.backup_handed_out",
                    message=f"Backup code on {lock.name} handed to {booking.guest_name}", now=now, code=code,
                    actor=actor, data={"ends_at": ends_at.isoformat()})
    backup_pool_top_up(lock=lock, now=now, actor=actor)
    return code
