"""A stored event is never lost (DESIGN §4, §6): an event whose processing task died with its worker
(the Redis broker loses a task a killed worker held) is enqueued again by the sweep once it has been
left unprocessed past a grace, on either broker; processing stays idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from locks.models import CommandState, LockCommand
from locks.sweep import sweep
from locks.tick import tick
from portal.services import booking_create
from providers.base import EventKind, Progress
from providers.models import WebhookEvent
from tests.locks.conftest import T0


@pytest.fixture
def in_flight(single, cloud) -> LockCommand:
    cloud.mode = Progress.PENDING
    check_in = T0 + timedelta(hours=1)
    booking_create(tenant=single.tenant, property=single.property, guest_name="Emma", check_in=check_in,
                   check_out=check_in + timedelta(days=1), now=T0)
    tick(now=T0)
    return LockCommand.objects.get()


def stored_event(single, command: LockCommand, *, received_at, event_id: str = "evt-1") -> WebhookEvent:
    """What the intake stored before the worker holding its task was killed: a row, and no task."""
    payload = {"id": event_id, "events": [{"kind": EventKind.CODE_SET, "device": "front", "ref": command.vendor_ref}]}
    return WebhookEvent.objects.create(provider_account=single.account, vendor_event_id=event_id,
                                       received_at=received_at, payload=payload)


def test_the_sweep_processes_an_event_left_unprocessed_past_the_grace(single, in_flight):
    event = stored_event(single, in_flight, received_at=T0)

    sweep(now=T0 + timedelta(seconds=121))

    event.refresh_from_db()
    in_flight.refresh_from_db()
    assert event.processed_at is not None
    assert event.matched_command_id == in_flight.pk
    assert in_flight.state == CommandState.SUCCEEDED


def test_the_sweep_leaves_a_young_event_to_its_own_task(single, in_flight):
    event = stored_event(single, in_flight, received_at=T0)

    sweep(now=T0 + timedelta(seconds=60))

    event.refresh_from_db()
    assert event.processed_at is None
    assert event.requeued_at is None


def test_the_grace_is_a_setting(single, in_flight, settings):
    settings.LOCKSTEP = {"EVENT_REPROCESS_AFTER_SECONDS": 600}
    event = stored_event(single, in_flight, received_at=T0)

    sweep(now=T0 + timedelta(seconds=300))
    event.refresh_from_db()
    assert event.processed_at is None

    sweep(now=T0 + timedelta(seconds=601))
    event.refresh_from_db()
    assert event.processed_at is not None


def test_a_processed_event_is_not_enqueued_again(single, in_flight):
    event = stored_event(single, in_flight, received_at=T0)
    sweep(now=T0 + timedelta(seconds=121))
    event.refresh_from_db()
    first = (event.processed_at, event.result)

    report = sweep(now=T0 + timedelta(minutes=10))

    event.refresh_from_db()
    assert (event.processed_at, event.result) == first
    assert report.requeued_events == 0


def queued_tasks(event: WebhookEvent) -> int:
    from django_q.models import OrmQ

    return sum(1 for task in OrmQ.objects.all()
               if task.task["func"] == "locks.tasks.process_event" and task.task["args"] == (event.pk,))


def test_a_requeued_event_waits_another_grace_before_it_is_enqueued_again(single, in_flight, monkeypatch):
    # As in production, a worker picks the task up later; a slow one (a backlog) must not get a task
    # a minute piled on the same event.
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    event = stored_event(single, in_flight, received_at=T0)

    reports = [sweep(now=T0 + timedelta(seconds=s)).requeued_events for s in (121, 181, 242)]

    assert reports == [1, 0, 1]
    assert queued_tasks(event) == 2


def test_processing_an_event_twice_applies_it_once(single, in_flight):
    from locks.outcomes import event_process

    event = stored_event(single, in_flight, received_at=T0)

    first = event_process(event_id=event.pk, now=T0 + timedelta(minutes=3))
    second = event_process(event_id=event.pk, now=T0 + timedelta(minutes=4))

    assert second == "skipped" and first != "skipped"
