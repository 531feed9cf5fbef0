"""Adaptive programming lead (DESIGN §4 "Adaptive lead"; issue 15 "Codes that beat the clock"): a
just-in-time lock that has failed lately gets its codes earlier, never earlier than the tenant's maximum
early exposure; a healthy lock keeps the standard lead exactly; a natively scheduling lock keeps its
preload."""

from __future__ import annotations

from datetime import timedelta

import pytest

from locks.conf import engine
from locks.lead import Finished, lead_explained, lead_learn, lock_lead_refresh
from locks.models import AccessCode, Activity, CommandAction, CommandState, Lock, LockCommand
from locks.sweep import sweep
from locks.tick import tick
from portal.members import tenant_update_defaults
from portal.services import booking_create
from providers.base import Progress, Reason
from tests import factories
from tests.locks.conftest import T0

NORMAL = timedelta(seconds=30)


def _booking(place, *, days=3, hours=0):
    check_in = T0 + timedelta(days=days, hours=hours)
    return booking_create(tenant=place.tenant, property=place.property, guest_name="Ben Okafor",
                          check_in=check_in, check_out=check_in + timedelta(days=1), now=T0)


def _history(lock: Lock, *, failed: int, of: int, took=timedelta(minutes=30), ok_took=timedelta(seconds=10)):
    """`of` finished writes on the lock, the newest `failed` of them timed out after `took`."""
    for n in range(of):
        sent = T0 - timedelta(hours=of - n)
        failing = n >= of - failed
        LockCommand.objects.create(
            tenant=lock.tenant, lock=lock, action=CommandAction.CREATE,
            state=CommandState.TIMED_OUT if failing else CommandState.SUCCEEDED,
            reason=Reason.TIMEOUT if failing else "", sent_at=sent,
            finished_at=sent + (took if failing else ok_took),
        )


def _code(booking, lock) -> AccessCode:
    return AccessCode.objects.get(booking=booking, lock=lock)


def test_it_keeps_the_standard_lead_exactly_on_a_healthy_lock(place):
    booking = _booking(place)
    code = _code(booking, place.jit)
    planned = code.program_at
    _history(place.jit, failed=0, of=10)

    assert lock_lead_refresh(lock_id=place.jit.pk, now=T0) is None

    place.jit.refresh_from_db()
    code.refresh_from_db()
    assert place.jit.lead_minutes is None
    assert code.program_at == planned == code.starts_at - timedelta(minutes=engine().JUST_IN_TIME_MINUTES)
    assert "the standard lead" in lead_explained(place.jit)


def test_it_programs_earlier_on_a_lock_that_failed_lately(place):
    booking = _booking(place)
    code = _code(booking, place.jit)
    _history(place.jit, failed=3, of=10)

    lead = lock_lead_refresh(lock_id=place.jit.pk, now=T0)

    # p = 0.3: plan for 3 failures in a row (0.3^4 < 1 %), each 30 min plus its backoff (1, 2, 5 min):
    # 98 min, rounded up to 105, on top of the standard 60.
    assert lead is not None and lead.minutes == 165
    code.refresh_from_db()
    assert code.program_at == code.starts_at - timedelta(minutes=165)
    place.jit.refresh_from_db()
    assert lead_explained(place.jit) == (
        "Programmed 2 h 45 min ahead because this lock failed 3 of its last 10 commands.")


def test_a_lock_failing_everything_is_capped_at_the_tenants_maximum_early_exposure(place):
    booking = _booking(place)
    code = _code(booking, place.jit)
    _history(place.jit, failed=10, of=10, took=timedelta(minutes=45))

    lock_lead_refresh(lock_id=place.jit.pk, now=T0)

    place.jit.refresh_from_db()
    code.refresh_from_db()
    assert place.jit.lead_minutes > 6 * 60  # what the record asks for ...
    assert code.program_at == code.starts_at - timedelta(hours=6)  # ... and what the tenant allows
    assert "(the most your tenant allows)" in lead_explained(place.jit)


def test_lowering_the_maximum_early_exposure_moves_waiting_codes_later(place):
    booking = _booking(place)
    code = _code(booking, place.jit)
    _history(place.jit, failed=10, of=10)
    lock_lead_refresh(lock_id=place.jit.pk, now=T0)
    admin = factories.UserFactory(username="alice")

    tenant_update_defaults(tenant=place.tenant, actor=admin, now=T0, max_early_exposure_hours=2)

    code.refresh_from_db()
    assert code.program_at == code.starts_at - timedelta(hours=2)


def test_a_natively_scheduling_lock_keeps_its_preload(place):
    booking = _booking(place, days=5)
    code = _code(booking, place.native)
    _history(place.native, failed=10, of=10)

    assert lock_lead_refresh(lock_id=place.native.pk, now=T0) is None

    code.refresh_from_db()
    place.native.refresh_from_db()
    assert place.native.lead_minutes is None
    assert code.program_at == code.starts_at - timedelta(hours=engine().NATIVE_PRELOAD_HOURS)
    assert "the lock itself opens them only in their window" in lead_explained(place.native)


def test_a_timed_out_write_moves_the_next_code_earlier(place, cloud):
    soon = _booking(place, days=0, hours=1)  # programmed at once
    later = _booking(place, days=3)
    waiting = _code(later, place.jit)
    assert waiting.program_at == waiting.starts_at - timedelta(minutes=60)
    cloud.mode = Progress.PENDING
    tick(now=T0)
    sent = LockCommand.objects.get(access_code=_code(soon, place.jit), state=CommandState.SENT)

    sweep(now=T0 + timedelta(minutes=engine().SWEEP_HARD_LIMIT_MINUTES))

    sent.refresh_from_db()
    waiting.refresh_from_db()
    assert sent.state == CommandState.TIMED_OUT
    # One write, and it failed: the lock gets as early as the tenant allows.
    assert waiting.program_at == waiting.starts_at - timedelta(hours=6)
    change = Activity.objects.get(lock=place.jit, verb="lock.lead_changed")
    assert change.data["from_minutes"] is None and change.data["codes_moved"] == 1


def test_slow_answers_alone_move_the_lead_in_whole_steps():
    record = [Finished(CommandState.SUCCEEDED, "", timedelta(minutes=20))] * 5

    lead = lead_learn(record, normal_latency=NORMAL)

    assert lead.minutes == 60 + 15  # 15 min beyond the 5 the sweeper waits before asking, in 15-minute steps
    assert lead.failed == 0 and lead.slowest_seconds == 1200


def test_answers_within_the_sweepers_patience_do_not_move_the_lead():
    record = [Finished(CommandState.SUCCEEDED, "", timedelta(minutes=engine().SWEEP_STALE_MINUTES))] * 10

    assert lead_learn(record, normal_latency=NORMAL).minutes is None


@pytest.mark.parametrize("reason", [Reason.DUPLICATE_PIN, Reason.INVALID_PIN])
def test_a_permanent_refusal_is_not_held_against_the_lock(reason):
    record = [Finished(CommandState.FAILED, reason, timedelta(seconds=5))] + [
        Finished(CommandState.SUCCEEDED, "", timedelta(seconds=5))] * 9

    assert lead_learn(record, normal_latency=NORMAL).minutes is None
