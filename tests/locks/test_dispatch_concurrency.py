"""Many dispatchers at once never send one command twice, nor two commands to one lock at a time."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from locks.dispatch import dispatch_lock
from locks.models import AccessCode, CommandState, LockCommand
from locks.tick import tick
from portal.services import booking_create
from providers.base import Progress
from tests import factories
from tests.locks.conftest import T0, _place

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serializes writers (one machine, one worker); concurrent claiming is a PostgreSQL matter",
)


@pytest.fixture
def broker_elsewhere(monkeypatch):
    """Tasks go to the ORM broker instead of running inline: no worker races the threads under test."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


def _run_together(count: int, target) -> list[BaseException]:
    from django.db import connections

    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def _bookings(place, n: int) -> None:
    """`n` stays a minute apart, all due now (a property's confirmed stays never overlap, so they are
    one minute long each; their code windows, with the buffers, still share the lock)."""
    for i in range(n):
        check_in = T0 + timedelta(hours=1, minutes=i)
        booking_create(tenant=place.tenant, property=place.property, guest_name=f"Guest {i}",
                       check_in=check_in, check_out=check_in + timedelta(minutes=1), now=T0)


@pytest.mark.django_db(transaction=True)
def test_it_never_sends_a_command_twice_with_two_dispatchers(cloud, broker_elsewhere):
    place = _place(factories.TenantFactory(slug="race"), with_jit=False)
    _bookings(place, 8)
    assert LockCommand.objects.filter(state=CommandState.QUEUED).count() == 8

    errors = _run_together(4, lambda: dispatch_lock(lock_id=place.native.pk, now=T0))
    assert errors == []
    sends = Counter(call.code_id for call in cloud.sent("create"))
    assert len(sends) == 8 and set(sends.values()) == {1}
    assert set(LockCommand.objects.values_list("state", flat=True)) == {CommandState.SUCCEEDED}


@pytest.mark.django_db(transaction=True)
def test_it_keeps_one_command_in_flight_per_lock_under_concurrent_ticks(cloud, broker_elsewhere):
    cloud.mode = Progress.PENDING
    place = _place(factories.TenantFactory(slug="race2"))
    _bookings(place, 5)

    errors = _run_together(4, lambda: tick(now=T0 + timedelta(minutes=30)))
    assert errors == []
    assert LockCommand.objects.filter(state=CommandState.SENT).count() == 2  # one per lock
    sends = Counter(call.code_id for call in cloud.sent())
    assert set(sends.values()) == {1} and len(sends) == 2
    assert AccessCode.objects.count() == 10
