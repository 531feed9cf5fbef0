"""Booking saved → create command sent, with a real worker (DESIGN §6, §12): one `manage.py qcluster`
subprocess (the settings' workers) on the ORM broker, then on Redis; each booking's code is due at once
on a zero-latency simulated lock, so what is measured is the enqueue on commit, the broker's hand-over
and `dispatch_lock`. Needs PostgreSQL: the worker is another process on the bench's throwaway database.

The bench process enqueues through django-q's `Conf`, pointed at the same broker and queue name as the
worker for each phase. The worker's process group is always stopped, whatever happens.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.utils import timezone

from bench import fleet
from bench.intake import server_env, stop_group

Report = Callable[[str, str, bool], None]

# A database of its own on the shared Redis, and a queue name of this run's, so no other worker takes
# (or hands us) a task.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
TARGETS = {"orm": 2.0, "redis": 0.5}
ROOT = Path(__file__).resolve().parent.parent


def run(report: Report, quick: bool) -> None:
    if connection.vendor != "postgresql":
        print("skip  booking → send with a real worker: needs DATABASE_URL on PostgreSQL", flush=True)
        return
    bookings = 12 if quick else 50
    with _schedules_paused():
        for broker in ("orm", "redis"):
            samples = _measure(broker, bookings)
            _report(report, broker, samples, bookings)


def _report(report: Report, broker: str, samples: list[float], bookings: int) -> None:
    target = TARGETS[broker]
    name = f"booking saved → create sent, one qcluster on the {'ORM' if broker == 'orm' else 'Redis'} broker"
    if len(samples) < bookings:
        report(name, f"only {len(samples)} of {bookings} bookings reached the lock within 30 s", False)
        return
    median = statistics.median(samples)
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
    report(name, f"median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms "
           f"over {len(samples)} bookings (median < {target:g} s)", median < target)


def _measure(broker: str, bookings: int) -> list[float]:
    from locks.models import LockCommand
    from portal.models import Property
    from portal.services import booking_create

    tenant, _prop, account = fleet.tenant_with_account(f"latency-{broker}")
    warmup = 3
    properties = [Property.objects.create(tenant=tenant, name=f"Latency {broker} {n}")
                  for n in range(warmup + bookings)]
    locks = [fleet.locks(tenant, prop, account, 1)[0] for prop in properties]
    name = f"bench-{os.getpid()}-{broker}-{random.randrange(10**6)}"
    samples: list[float] = []
    started = time.monotonic()
    with _broker(broker, name), _qcluster(broker, name):
        for n, (prop, lock) in enumerate(zip(properties, locks, strict=True)):
            time.sleep(random.uniform(0, 0.2))  # land anywhere in the worker's poll cycle
            now = timezone.now()
            booking_create(tenant=tenant, property=prop, guest_name=f"Latency guest {n}",
                           check_in=now + timedelta(minutes=30), check_out=now + timedelta(days=1))
            sent_at = _wait_sent(LockCommand, lock.pk, deadline=time.monotonic() + 30)
            if sent_at is not None and n >= warmup:  # the first few pay the worker's imports
                samples.append((sent_at - now).total_seconds())
    print(f"info  {broker} phase: {time.monotonic() - started:.0f} s", flush=True)
    return samples


def _wait_sent(model: type, lock_id: int, *, deadline: float) -> object | None:
    while time.monotonic() < deadline:
        sent_at = (model.objects.filter(lock_id=lock_id, action="create", sent_at__isnull=False)  # type: ignore[attr-defined]
                   .values_list("sent_at", flat=True).first())
        if sent_at is not None:
            return sent_at
        time.sleep(0.01)
    return None


@contextmanager
def _qcluster(broker: str, name: str) -> Iterator[None]:
    """One `manage.py qcluster` on the bench settings and this phase's broker; its group always stopped."""
    env = server_env(Q_BROKER=broker, REDIS_URL=REDIS_URL, BENCH_Q_NAME=name)
    process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "qcluster"], env=env, cwd=ROOT,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        if process.poll() is not None:
            raise RuntimeError(f"qcluster exited with {process.returncode}")
        yield
    finally:
        stop_group(process, grace=3)


@contextmanager
def _broker(broker: str, name: str) -> Iterator[None]:
    """Point this process's django-q at the phase's broker and queue, as the worker's settings do."""
    from django_q.conf import Conf

    saved = Conf.ORM, Conf.REDIS, Conf.PREFIX, Conf.CLUSTER_NAME
    Conf.ORM = "default" if broker == "orm" else None
    Conf.REDIS = REDIS_URL if broker == "redis" else saved[1]
    Conf.PREFIX = Conf.CLUSTER_NAME = name
    try:
        yield
    finally:
        Conf.ORM, Conf.REDIS, Conf.PREFIX, Conf.CLUSTER_NAME = saved


@contextmanager
def _schedules_paused() -> Iterator[None]:
    """The worker's scheduler would tick and dispatch too: this measures the on-commit path alone."""
    from django_q.models import Schedule

    saved = dict(Schedule.objects.values_list("pk", "next_run"))
    Schedule.objects.update(next_run=timezone.now() + timedelta(days=365))
    try:
        yield
    finally:
        for pk, next_run in saved.items():
            Schedule.objects.filter(pk=pk).update(next_run=next_run)
