"""Vendor calls are a budget (issue 15): a stale command is polled with a backoff, not every minute until
the hard limit, and a reconciliation asked for by news that a newer read already answered is not made."""

from __future__ import annotations

from datetime import timedelta

from locks.conf import engine
from locks.models import AccessCode, CommandState, Lock, LockCommand
from locks.outcomes import event_process
from locks.reconcile import lock_apply_reading, locks_due_for_reconcile
from locks.sweep import next_poll_time, sweep
from locks.tick import tick
from portal.services import booking_create
from providers.base import EventKind, Progress
from providers.models import WebhookEvent
from tests.locks.conftest import T0


def _sent_command(place, cloud) -> LockCommand:
    check_in = T0 + timedelta(minutes=45)  # due at once on the just-in-time lock
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ben Okafor",
                             check_in=check_in, check_out=check_in + timedelta(days=1), now=T0)
    cloud.mode = Progress.PENDING
    tick(now=T0)
    return LockCommand.objects.get(access_code=AccessCode.objects.get(booking=booking, lock=place.jit),
                                   state=CommandState.SENT)


def _polls(cloud, command) -> int:
    return sum(1 for call in cloud.sent("status") if call.ref == command.vendor_ref)


def _sweep_every_minute(until_minutes: int, *, after: int = 0) -> None:
    for minute in range(after + 1, until_minutes + 1):
        sweep(now=T0 + timedelta(minutes=minute))


def test_a_stale_command_is_polled_at_growing_intervals_and_times_out_at_the_hard_limit(place, cloud):
    command = _sent_command(place, cloud)
    hard = engine().SWEEP_HARD_LIMIT_MINUTES

    polled_at = []
    for minute in range(1, hard + 1):
        before = _polls(cloud, command)
        sweep(now=T0 + timedelta(minutes=minute))
        if _polls(cloud, command) > before:
            polled_at.append(minute)

    assert polled_at == [5, 10, 20, 30]  # not 26 polls, one a minute
    command.refresh_from_db()
    assert command.state == CommandState.TIMED_OUT


def test_a_command_that_lands_between_polls_completes_at_the_next_poll(place, cloud):
    command = _sent_command(place, cloud)
    _sweep_every_minute(12)
    cloud.finish(command.vendor_ref)  # done on the lock; its webhook was lost

    _sweep_every_minute(19, after=12)
    command.refresh_from_db()
    assert command.state == CommandState.SENT and _polls(cloud, command) == 2  # at 5 and 10

    sweep(now=T0 + timedelta(minutes=20))
    command.refresh_from_db()
    assert command.state == CommandState.SUCCEEDED and _polls(cloud, command) == 3


def test_a_late_sweep_still_polls_and_the_hard_limit_is_never_passed():
    sent = T0
    assert next_poll_time(sent_at=sent, now=sent + timedelta(minutes=5)) == sent + timedelta(minutes=10)
    assert next_poll_time(sent_at=sent, now=sent + timedelta(minutes=13)) == sent + timedelta(minutes=26)
    assert next_poll_time(sent_at=sent, now=sent + timedelta(minutes=20)) == sent + timedelta(minutes=30)


def _news(place, *, kind: str, at, now) -> str:
    event = WebhookEvent.objects.create(
        provider_account=place.account, vendor_event_id=f"evt-{WebhookEvent.objects.count()}", received_at=now,
        payload={"id": "x", "events": [{"kind": kind, "device": place.jit.vendor_device_id, "at": at.isoformat()}]},
    )
    return event_process(event_id=event.pk, now=now)


def test_news_that_a_newer_read_answered_asks_for_no_read(place, cloud):
    lock_apply_reading(lock=place.jit, observed=[], now=T0 + timedelta(minutes=10))

    result = _news(place, kind=EventKind.CODE_CHANGED_EXTERNALLY, at=T0 + timedelta(minutes=5),
                   now=T0 + timedelta(minutes=15))

    assert "answered by a newer read" in result
    assert not Lock.objects.get(pk=place.jit.pk).reconcile_requested
    assert place.jit.pk not in locks_due_for_reconcile(now=T0 + timedelta(minutes=20))


def test_news_newer_than_the_last_read_asks_for_a_read(place, cloud):
    lock_apply_reading(lock=place.jit, observed=[], now=T0 + timedelta(minutes=10))

    _news(place, kind=EventKind.CODE_CHANGED_EXTERNALLY, at=T0 + timedelta(minutes=12), now=T0 + timedelta(minutes=15))

    assert Lock.objects.get(pk=place.jit.pk).reconcile_requested
    assert place.jit.pk in locks_due_for_reconcile(now=T0 + timedelta(minutes=20))
