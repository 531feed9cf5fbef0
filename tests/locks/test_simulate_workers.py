"""`simulate --workers`: the engine in real qcluster processes on PostgreSQL, invariants sampled while it runs."""

from __future__ import annotations

import json
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from portal.models import Tenant
from providers.models import SimulatedDevice

SAMPLED = ("false_set", "device_concurrent_ops", "overstay_unflagged", "late_unflagged", "events_unprocessed",
           "orphan_codes")
IN_PROCESS = ("codes", "by_status", "started", "set_in_window", "late_with_issue", "unexplained", "silently_wrong",
              "duplicate_pins_on_lock", "double_sends", "left_after_end", "vendor_calls", "seconds")


def simulation_workers() -> set[int]:
    """Processes running `simulate_qcluster` on this test's database."""
    database = f"/{connection.settings_dict['NAME']}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"simulate_qcluster" in (entry / "cmdline").read_bytes() and \
                        database in (entry / "environ").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="worker processes share the database: SQLite is one machine, one worker (DESIGN §6)")
@pytest.mark.django_db(transaction=True)  # the workers are other processes: they see committed rows only
def test_it_runs_the_engine_in_worker_processes_and_reports_every_invariant_and_leaves_no_worker_behind():
    before = simulation_workers()
    out = StringIO()

    call_command("simulate", "--bookings", "4", "--locks", "2", "--days", "1", "--faults", "none", "--seed", "5",
                 "--workers", "1", "--latency", "200", "--kill-workers", "--max-minutes", "4",
                 stdout=out, stderr=StringIO())

    report = json.loads(out.getvalue())
    assert simulation_workers() == before == set()
    assert set(SAMPLED + IN_PROCESS) <= set(report)
    assert report["workers"]["completed"] and report["workers"]["steps"] > 10
    assert report["workers"]["samples"] >= report["workers"]["steps"]
    assert report["codes"] > 0 and report["vendor_calls"]["create"] >= report["codes"]  # workers did send
    assert report["workers"]["left_running"] == 0
    assert not Tenant.objects.filter(slug__startswith="sim-5-").exists()
    assert not SimulatedDevice.objects.exists()


@pytest.mark.django_db
def test_latency_and_killing_need_the_worker_mode():
    with pytest.raises(CommandError, match="need --workers"):
        call_command("simulate", "--latency", "100", stdout=StringIO())


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the refusal is SQLite's")
@pytest.mark.django_db
def test_the_worker_mode_refuses_sqlite():
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command("simulate", "--workers", "1", stdout=StringIO())


@pytest.mark.django_db
def test_the_clock_waits_for_a_vendor_answer_in_flight_one_step_at_most(world):
    """The compressed clock must not jump the sweeper's stale and hard limits while a one-second answer is on
    its way (it once polled, timed out and re-sent such a command: two operations on one lock, a double
    send). It may move one step past the call — the lock's own news can overtake the answer — and then
    waits, bounded, for the answer."""
    from datetime import timedelta
    from types import SimpleNamespace

    from locks.management.simulation import fleet as sim
    from locks.management.simulation.run import _hold_for_answers
    from locks.models import CommandState, LockCommand

    fleet = SimpleNamespace(tenant=world.seaside)
    now = sim.START
    far = now + timedelta(hours=3)
    LockCommand.objects.filter(pk=world.command.pk).update(state=CommandState.SENT, sent_at=now, request_summary={})

    assert _hold_for_answers(fleet, now=now, target=far, seconds=0.01) == now + sim.STEP  # one step on, no wait
    assert _hold_for_answers(fleet, now=now, target=now + sim.STEP, seconds=0.01) == now + sim.STEP

    started = time.monotonic()
    assert _hold_for_answers(fleet, now=now + sim.STEP, target=far, seconds=0.3) == far  # waited out: a dead call
    assert time.monotonic() - started >= 0.3

    LockCommand.objects.filter(pk=world.command.pk).update(request_summary={"action": "create"})  # answered
    started = time.monotonic()
    assert _hold_for_answers(fleet, now=now + sim.STEP, target=far, seconds=5) == far
    assert time.monotonic() - started < 1


def test_the_clock_does_not_jump_over_the_read_a_lock_is_due_for(world):
    """Found by the 300-booking harsh multi-worker run (orphan_codes, lock 17): a lock's read fell due at
    06:53, between two runs of the five-minute reconciliation; the next step due was at 08:42, so the clock
    went there and the lock went unread for two hours past its time. Production runs the task every five
    minutes whatever else is due: a lock due for a read keeps the clock to the task's next run."""
    from datetime import timedelta
    from types import SimpleNamespace

    from locks.conf import engine
    from locks.management.simulation import fleet as sim
    from locks.management.simulation.run import RECONCILE_TASK, _not_past_due_reads
    from locks.models import Lock

    fleet = SimpleNamespace(tenant=world.seaside)
    now = sim.START + timedelta(hours=7)
    last = {RECONCILE_TASK: now - timedelta(minutes=2)}
    every = {RECONCILE_TASK: timedelta(minutes=5)}
    far = now + timedelta(hours=2)
    Lock.objects.filter(tenant=world.seaside).update(last_reconciled_at=now - timedelta(hours=2))

    assert _not_past_due_reads(fleet, now=now, target=far, last=last, every=every) == far  # nobody due

    Lock.objects.filter(pk=world.lock.pk).update(last_reconciled_at=now - engine().reconcile_every - sim.STEP)
    assert _not_past_due_reads(fleet, now=now, target=far, last=last, every=every) == now + timedelta(minutes=3)
