"""Staff at work during a harsh run: the actions of the lock and booking pages, while commands are in flight.

A plan of actions at seeded virtual times; each picks its target when it runs, preferring codes and locks
with a command in flight (that is where a change of mind hurts). Actions go through the same functions the
pages call (`portal.services` for bookings, `locks.actions` for the one-click fixes). An action the engine
refuses for the state the target is in (a new PIN for a code being removed, say) is counted as refused,
as a person would see an error and move on.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError

from locks.actions import TransitionError, code_regenerate_pin, code_retry_now, lock_delete_all_and_reprogram
from locks.models import AccessCode, CodeStatus, CommandState, Lock, LockCommand
from locks.pins import PinRejected
from portal.models import Booking, BookingStatus, Tenant
from portal.services import booking_cancel, booking_update

ACTIONS = ("move_dates", "cancel", "new_pin", "retry_now", "delete_all")
WEIGHTS = (30, 10, 25, 25, 10)
MIN_NOTICE = timedelta(hours=3)  # a date move never makes a code due sooner than this (it would be late by fiat)


def operator_plan(*, rng: random.Random, start: datetime, end: datetime, bookings: int) -> list[tuple[datetime, str]]:
    """One action per five bookings, at whole minutes spread over the run."""
    minutes = int((end - start).total_seconds() // 60)
    plan = [(start + timedelta(minutes=rng.randrange(1, max(2, minutes))), rng.choices(ACTIONS, weights=WEIGHTS)[0])
            for _ in range(max(1, bookings // 5))]
    return sorted(plan)


def operator_act(*, tenant: Tenant, action: str, rng: random.Random, now: datetime, done: Counter[str],
                 refusals: list[str]) -> None:
    """Try the action (a person tries up to three targets when the page says no)."""
    for _ in range(3):
        try:
            acted = _ACTS[action](tenant, rng, now)
        except (TransitionError, ValidationError, PinRejected, IntegrityError) as exc:
            refusals.append(f"{action}: {type(exc).__name__}: {exc}"[:200])
            continue
        done[action if acted else f"{action}_no_target"] += 1
        return
    done[f"{action}_refused"] += 1


def _in_flight_first(codes: list[AccessCode], rng: random.Random) -> AccessCode | None:
    flying = set(LockCommand.objects.filter(access_code__in=codes, state=CommandState.SENT)
                 .values_list("access_code_id", flat=True))
    preferred = [code for code in codes if code.pk in flying] or codes
    return rng.choice(preferred) if preferred else None


def _move_dates(tenant: Tenant, rng: random.Random, now: datetime) -> bool:
    candidates = list(Booking.objects.filter(tenant=tenant, status=BookingStatus.CONFIRMED,
                                             check_in__gt=now + MIN_NOTICE + timedelta(hours=12)).order_by("pk"))
    if not candidates:
        return False
    booking = rng.choice(candidates)
    shift = timedelta(hours=rng.choice((-12, -6, -3, 3, 6, 12)))
    changes: dict[str, Any] = {"check_in": booking.check_in + shift, "check_out": booking.check_out + shift}
    if rng.random() < 0.3:  # or only the stay's end moves
        changes = {"check_out": booking.check_out + timedelta(hours=rng.choice((-6, 6, 24)))}
    booking_update(booking=booking, now=now, **changes)
    return True


def _cancel(tenant: Tenant, rng: random.Random, now: datetime) -> bool:
    candidates = list(Booking.objects.filter(tenant=tenant, status=BookingStatus.CONFIRMED, check_out__gt=now)
                      .order_by("pk"))
    if not candidates:
        return False
    booking_cancel(booking=rng.choice(candidates), now=now)
    return True


def _new_pin(tenant: Tenant, rng: random.Random, now: datetime) -> bool:
    codes = list(AccessCode.objects.filter(tenant=tenant, status__in=[CodeStatus.SETTING, CodeStatus.SET],
                                           ends_at__gt=now).select_related("lock").order_by("pk"))
    code = _in_flight_first(codes, rng)
    if code is None:
        return False
    code_regenerate_pin(code=code, actor=None, now=now)
    return True


def _retry_now(tenant: Tenant, rng: random.Random, now: datetime) -> bool:
    codes = list(AccessCode.objects.filter(tenant=tenant, status__in=[CodeStatus.SETTING, CodeStatus.FAILED,
                                                                      CodeStatus.REMOVING]).order_by("pk"))
    code = _in_flight_first(codes, rng)
    if code is None:
        return False
    code_retry_now(code=code, actor=None, now=now)
    return True


def _delete_all(tenant: Tenant, rng: random.Random, now: datetime) -> bool:
    flying = sorted(set(LockCommand.objects.filter(tenant=tenant, state=CommandState.SENT)
                        .values_list("lock_id", flat=True)))
    lock_ids = flying or list(Lock.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True))
    if not lock_ids:
        return False
    lock_delete_all_and_reprogram(lock=Lock.objects.get(pk=rng.choice(lock_ids)), actor=None, now=now)
    return True


_ACTS = {"move_dates": _move_dates, "cancel": _cancel, "new_pin": _new_pin, "retry_now": _retry_now,
         "delete_all": _delete_all}
