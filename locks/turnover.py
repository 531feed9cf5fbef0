"""Turnover codes (DESIGN §3 AccessCode purpose `turnover`): on a property that opts in, a cleaner's code
on every lock from one stay's check-out to the next stay's check-in.

`turnover_codes_sync` is called whenever the property's stays change (booking create, update, cancel,
and the property's replan); each gap's codes share a `common_code_key` naming the stay before it, so a
moved stay moves the gap's codes (pushed through the queue), a gap that closes removes them, and a new gap
gets new codes with a fresh PIN.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from locks.models import AccessCode, CodePurpose, CodeStatus, Lock
from locks.people import codes_make
from locks.planning import code_follow_window, code_remove, program_time

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from portal.models import Property

    Actor = AbstractBaseUser | AnonymousUser | None

TURNOVER_HOLDER = "Turnover clean"
KEY_PREFIX = "turnover-"


def turnover_gaps(*, prop: Property, now: datetime) -> dict[str, tuple[datetime, datetime]]:
    """Each gap between consecutive confirmed stays that has not ended: key → (check-out, next check-in)."""
    from portal.models import Booking, BookingStatus

    if not prop.turnover_codes or prop.archived_at is not None:
        return {}
    confirmed = Booking.objects.filter(property=prop, status=BookingStatus.CONFIRMED)
    before = confirmed.filter(check_in__lte=now).order_by("-check_in", "-pk").first()
    stays = [*([before] if before else []), *confirmed.filter(check_in__gt=now).order_by("check_in", "pk")]
    gaps: dict[str, tuple[datetime, datetime]] = {}
    for left, right in itertools.pairwise(stays):
        if left.check_out < right.check_in:
            gaps[f"{KEY_PREFIX}{left.pk}"] = (left.check_out, right.check_in)
    return gaps


@transaction.atomic
def turnover_codes_sync(*, prop: Property, now: datetime, actor: Actor = None) -> None:
    """Make the property's turnover codes what its stays want. Idempotent."""
    locks = list(Lock.objects.filter(property=prop, managed=True).select_related("tenant").order_by("id"))
    wanted = turnover_gaps(prop=prop, now=now) if locks else {}
    live = AccessCode.objects.select_related("lock", "tenant").filter(
        lock__property=prop, purpose=CodePurpose.TURNOVER, booking__isnull=True,
    ).exclude(status__in=[CodeStatus.REMOVED, CodeStatus.REMOVING]).order_by("id")
    have: dict[str, list[AccessCode]] = {}
    for code in live:
        if code.common_code_key not in wanted:
            code_remove(code=code, now=now, actor=actor, note="stays changed")
        else:
            have.setdefault(code.common_code_key, []).append(code)
    for key, (starts_at, ends_at) in wanted.items():
        if ends_at <= now:
            continue
        codes = have.get(key)
        if codes is None:
            try:
                codes_make(locks, purpose=CodePurpose.TURNOVER, holder=TURNOVER_HOLDER, pin=None,
                           starts_at=starts_at, ends_at=ends_at, key=key, keep_key=True, actor=actor, now=now)
            except ValidationError:
                continue  # no free PIN on a door: the stays still save; the lock page shows it is full
            continue
        for code in codes:
            code_follow_window(code, holder=TURNOVER_HOLDER, starts_at=starts_at, ends_at=ends_at,
                               program_at=program_time(lock=code.lock, starts_at=starts_at, now=now),
                               now=now, actor=actor)
