"""The multi-worker run: the simulate process plays the clock, the scheduler, the guests and the staff;
K `qcluster` process groups do the engine's work, as in production (DESIGN §5 "Proof", §6).

Each step (a virtual moment; the clock jumps to the next moment anything is due, like the in-process mode):
1. write the shared clock; bookings and staff actions due now happen (in this process, like a web request:
   their follow-up work is enqueued, not run here);
2. enqueue the schedules due now (tick, sweep and the simulator's clock every virtual minute,
   reconcile_due every 5, health every 10 — the table in locks/apps.py) with step-named tasks;
3. wait (bounded) until workers have finished those, and until the broker has no task waiting (a step whose
   tasks a killed worker took is followed by the next minute's, as production's scheduler does) — but not
   for tasks still running: a vendor call waiting `--latency` for its answer overlaps the next step, and the
   completion it caused may be delivered (and processed) first, as in production;
4. hold the clock for answers in flight: the clock may move one step past a vendor call that has not been
   answered yet (so the lock's own events can overtake the answer), and no further until the answer is
   recorded. Without this hold the compressed clock jumps minutes or hours while a one-second answer is on
   its way, and the sweeper sees a command "unanswered for 30 minutes" that production would have heard
   back from in a second (it polled, timed out and re-sent it: double sends, two operations on one lock).
   The hold is bounded in real time: a call whose worker was killed is never answered, and that crash is
   exactly what the sweeper must handle, so after the bound the clock goes on;
5. now and then (with `--kill-workers`) SIGKILL a worker process, a cluster leader or the whole fleet;
6. sample the invariants (invariants.py).
After the last step the clock creeps on a minute at a time while the workers drain, bounded in real time.
Every wait is bounded, and the clusters are stopped by process group on every way out (processes.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Min

from locks.apps import SCHEDULES
from locks.conf import engine
from locks.management.commands.simulate_qcluster import CLUSTER_ENV, STATE_ENV, STEP_TASK_PREFIX
from locks.management.simulation import fleet as sim
from locks.management.simulation.clock import SharedClock, clock_follow, clock_restore
from locks.management.simulation.invariants import Sampler, dossier, snapshot_take
from locks.management.simulation.operator import operator_act, operator_plan
from locks.management.simulation.processes import Clusters
from providers.models import SimulatedDevice, WebhookEvent

# What the production scheduler runs that the engine's proof needs (alerts, feeds and digests are not).
ENGINE_SCHEDULES = ("locks.tasks.tick", "locks.tasks.sweep", "locks.tasks.reconcile_due", "locks.tasks.health",
                    "providers.simulator_tasks.advance_all")
STEP_WAIT_SECONDS = 20.0  # a step's schedule tasks normally take well under a second each
BACKLOG_WAIT_SECONDS = 20.0
DRAIN_MINUTES = 20  # virtual minutes after the end for answers, retries and events to settle
DRAIN_SECONDS = 240.0  # the ORM broker hands a killed worker's task out again after `retry` (180 s)
KILL_EVERY_SECONDS = (20.0, 60.0)
INTERLEAVE = 0.5
FINDINGS_FILE = "findings.jsonl"
RECONCILE_TASK = "locks.tasks.reconcile_due"
ANSWER_HOLD_SECONDS = 10.0  # plus four times --latency: how long the clock waits for an answer in flight


@dataclass
class WorkerRun:
    steps: int = 0
    steps_waited_out: int = 0
    operator: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)
    completed: bool = True


def simulate_with_workers(options: dict[str, Any], *, log: Any) -> tuple[dict[str, Any], list[Any], list[int]]:
    """Build the fleet, run it on K clusters, return (report, per-code sends, unexplained code ids)."""
    from locks.pins import use_rng

    if connection.vendor != "postgresql":
        raise CommandError("--workers needs PostgreSQL (SQLite is one machine, one worker: DESIGN §6)")
    began = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="lockstep-sim-"))
    (state / "done").mkdir()
    clock = SharedClock(state / "clock")
    clock.set(sim.START)
    name = f"lockstep-sim-{secrets.token_hex(4)}"
    clusters = Clusters(count=options["workers"], env=_child_env(options, state=state, cluster_name=name),
                        log_dir=state, rng=random.Random(f"kills-{options['seed']}"))
    fleet = None
    with _on_sigterm_exit(), _broker(options, cluster_name=name) as broker, \
            use_rng(random.Random(f"pins-{options['seed']}")):
        clock_follow(clock.path)
        try:
            fleet = sim.fleet_build(bookings=options["bookings"], locks=options["locks"], days=options["days"],
                                    faults=options["faults"], seed=options["seed"])
            fleet.account.credentials = {**fleet.account.credentials, "answer_ms": options["latency"],
                                         "interleave": INTERLEAVE if options["latency"] else 0}
            fleet.account.save(update_fields=["credentials"])
            clusters.start()
            run = WorkerRun()
            sampler = Sampler()
            observations = _run(fleet, options, clock=clock, clusters=clusters, broker=broker, sampler=sampler,
                                run=run, state=state, deadline=began + options["max_minutes"] * 60, log=log)
        except BaseException:
            clusters.stop()
            clock_restore()
            if fleet is not None and not options["keep"]:
                sim.fleet_delete(fleet)
            log.write(f"run stopped; the workers' logs are in {state}")
            raise
        finally:
            clusters.stop()
            left = clusters.alive()
            clock_restore()
            broker.delete_queue()
        report = sim.fleet_report(fleet, observations)
        report.update(sampler.counts())
        report["events_unprocessed"] = WebhookEvent.objects.filter(provider_account=fleet.account,
                                                                   processed_at__isnull=True).count()
        noted = sum(stats.get("concurrent", 0) for stats in SimulatedDevice.objects.filter(
            account=fleet.account).values_list("stats", flat=True))
        report["device_concurrent_ops"] = max(report["device_concurrent_ops"], noted)
        report["workers"] = {
            "clusters": options["workers"], "broker": options["broker"], "latency_ms": options["latency"],
            "kills": dict(sorted(clusters.kills.items())), "restarts": clusters.restarts, "stall_restarts": clusters.stalls,
            "left_running": len(left),
            "steps": run.steps, "steps_waited_out": run.steps_waited_out, "samples": sampler.samples,
            "completed": run.completed,
        }
        report["operator_actions"] = dict(sorted(run.operator.items()))
        if run.refusals:
            log.write(f"staff actions the engine refused, e.g.: {run.refusals[:5]}")
        examples = sampler.examples()
        if examples:
            log.write(f"sampled findings, e.g.: {examples}")
    if options["keep"]:
        log.write(f"kept tenant {fleet.tenant.slug} and the run's logs in {state}")
    else:
        sim.fleet_delete(fleet)
    if (state / FINDINGS_FILE).exists():
        log.write(f"each finding's dossier: {state / FINDINGS_FILE}")
    elif not options["keep"]:
        shutil.rmtree(state, ignore_errors=True)
    return report, report.pop("_per_code"), report.pop("_unexplained")


def _run(fleet: Any, options: dict[str, Any], *, clock: SharedClock, clusters: Clusters, broker: Any,
         sampler: Sampler, run: WorkerRun, state: Path, deadline: float, log: Any) -> Any:
    observations = sim.Observations()
    plan = list(fleet.plan)
    acts = operator_plan(rng=random.Random(f"operator-{options['seed']}"), start=sim.START, end=fleet.end,
                         bookings=options["bookings"]) if options["faults"] == "harsh" else []
    act_rng = random.Random(f"operator-targets-{options['seed']}")
    every = {func: timedelta(minutes=minutes or 1) for func, _, minutes in SCHEDULES if func in ENGINE_SCHEDULES}
    last: dict[str, datetime] = {}
    kill_rng = random.Random(f"kill-times-{options['seed']}")
    next_kill = time.monotonic() + kill_rng.uniform(*KILL_EVERY_SECONDS)
    now, previous = sim.START, sim.START - sim.STEP
    drain_until = fleet.end + timedelta(minutes=DRAIN_MINUTES)
    while now <= drain_until:
        if time.monotonic() > deadline:
            run.completed = False
            log.write(f"stopped at {now:%Y-%m-%d %H:%M} (virtual): --max-minutes reached")
            break
        clock.set(now)
        while plan and plan[0][0] <= now:
            sim._apply_booking_change(fleet, *plan.pop(0)[1:], now=now)
        while acts and acts[0][0] <= now:
            operator_act(tenant=fleet.tenant, action=acts.pop(0)[1], rng=act_rng, now=now, done=run.operator,
                         refusals=run.refusals)
        names = []
        for func, period in every.items():
            if func not in last or now - last[func] >= period:
                names.append(f"{STEP_TASK_PREFIX}{run.steps:06d}-{func}")
                broker_enqueue(func, task_name=names[-1])
                last[func] = now
        run.steps += 1
        markers = [state / "done" / task for task in names]
        waited_out = not _wait(lambda paths=markers: all(path.exists() for path in paths), STEP_WAIT_SECONDS) or \
            not _wait(lambda: broker.queue_size() == 0, BACKLOG_WAIT_SECONDS)
        if waited_out:
            run.steps_waited_out += 1
            if options["kill_workers"]:
                clusters.restart_stalled()
        if options["kill_workers"] and now <= fleet.end and time.monotonic() >= next_kill:
            clusters.kill_some()
            next_kill = time.monotonic() + kill_rng.uniform(*KILL_EVERY_SECONDS)
        clusters.restart_dead()
        sim._observe_starts(fleet, observations, after=previous, until=now)
        _sample(sampler, snapshot_take(tenant=fleet.tenant, account=fleet.account, now=now), state=state, log=log)
        if now >= fleet.end:  # draining: the clock creeps so sweeps, retries and late events can land
            previous, now = now, _hold_for_answers(fleet, now=now, target=now + sim.STEP,
                                                   seconds=ANSWER_HOLD_SECONDS + 4 * options["latency"] / 1000)
            continue
        upcoming = min([item[0] for item in plan[:1]] + [when for when, _ in acts[:1]], default=None)
        target = sim._next_step(fleet, now, [(upcoming, "", {})] if upcoming else [])
        if waited_out:  # a killed worker took this step's tick or sweep: production's scheduler fires again
            target = min(target, now + sim.STEP)  # a minute later, not whenever the next thing is due
        target = _not_past_due_reads(fleet, now=now, target=target, last=last, every=every)
        previous, now = now, _hold_for_answers(fleet, now=now, target=target,
                                               seconds=ANSWER_HOLD_SECONDS + 4 * options["latency"] / 1000)
    if run.completed:
        _wait(lambda: _settled(fleet, broker), DRAIN_SECONDS)
        clock.set(now)
        _sample(sampler, snapshot_take(tenant=fleet.tenant, account=fleet.account, now=now), state=state, log=log)
    return observations


def _sample(sampler: Sampler, snapshot: Any, *, state: Path, log: Any) -> None:
    """Sample the invariants; each finding, when first confirmed, leaves its dossier in the run's state
    directory (`findings.jsonl`) to be traced afterwards — the simulated vendor forgets old operations."""
    for name, keys in sampler.sample(snapshot).items():
        with (state / FINDINGS_FILE).open("a") as out:
            for key in sorted(keys, key=str):
                try:
                    out.write(json.dumps(dossier(snapshot, name, key), default=str) + "\n")
                except Exception as exc:  # a dossier is a tracing aid: it must never end a long run
                    log.write(f"no dossier for {name} {key}: {exc!r}")
        log.write(f"finding {name} at {snapshot.now:%Y-%m-%d %H:%M}: {sorted(str(key[0]) for key in keys)}")


def _not_past_due_reads(fleet: Any, *, now: datetime, target: datetime, last: dict[str, datetime],
                        every: dict[str, timedelta]) -> datetime:
    """Where the clock may go, given the reads locks are due for: a lock whose read fell due between two runs
    of the reconciliation task is read at its next run, so the clock goes no further than that run
    (production runs it every few minutes whatever else is due; the next moment something else is due may
    be hours away)."""
    from locks.models import Lock

    if RECONCILE_TASK not in last:
        return target
    oldest = Lock.objects.filter(tenant=fleet.tenant, managed=True).aggregate(
        oldest=Min("last_reconciled_at"))["oldest"]
    if oldest is None or oldest + engine().reconcile_every > now:
        return target
    return min(target, max(last[RECONCILE_TASK] + every[RECONCILE_TASK], now + sim.STEP))


def _unanswered(fleet: Any, *, since: datetime) -> Any:
    """Vendor calls in flight: commands sent since `since` whose answer is not recorded yet (a write's answer
    records the vendor's request summary; a read is answered in place, leaving `sent`)."""
    from django.db.models import Q

    from locks.models import CommandAction, CommandState, LockCommand

    return LockCommand.objects.filter(tenant=fleet.tenant, state=CommandState.SENT, sent_at__gte=since).filter(
        Q(request_summary={}) | Q(action__in=(CommandAction.READ_CODES, CommandAction.DELETE_ALL)))


def _hold_for_answers(fleet: Any, *, now: datetime, target: datetime, seconds: float) -> datetime:
    """Where the clock may go next: `target`, unless a vendor call sent in the last step is still waiting for
    its answer — then one step past that call at most, and no further until it is answered or `seconds` of
    real time have passed (a killed worker's call is never answered: the sweeper's case)."""
    pending = _unanswered(fleet, since=now - sim.STEP)
    earliest = pending.order_by("sent_at").values_list("sent_at", flat=True).first()
    if earliest is None or target <= earliest + sim.STEP:
        return target
    if now < earliest + sim.STEP:
        return earliest + sim.STEP  # one step on first: the lock's own news may overtake the answer
    _wait(lambda: not pending.exists(), seconds)
    return target


SAMPLED_KEYS = ("false_set", "device_concurrent_ops", "overstay_unflagged", "late_unflagged", "events_unprocessed",
                "orphan_codes")


def worker_problems(report: dict[str, Any]) -> list[str]:
    """The multi-worker mode's own invariants (the in-process ones are checked as before)."""
    problems = [f"{key} = {report[key]}" for key in SAMPLED_KEYS if report[key]]
    workers = report["workers"]
    if not workers["completed"]:
        problems.append("the run did not finish within --max-minutes")
    if workers["left_running"]:
        problems.append(f"{workers['left_running']} worker process(es) left running")
    return problems


def broker_enqueue(func: str, *, task_name: str) -> None:
    from django_q.tasks import async_task

    async_task(func, task_name=task_name)


def _settled(fleet: Any, broker: Any) -> bool:
    """Nothing waiting in the broker and every stored event processed."""
    return broker.queue_size() == 0 and not (broker.lock_size() or 0) and not WebhookEvent.objects.filter(
        provider_account=fleet.account, processed_at__isnull=True).exists()


def _wait(done: Any, seconds: float) -> bool:
    until = time.monotonic() + seconds
    while not done():
        if time.monotonic() > until:
            return False
        time.sleep(0.01)
    return True


def _child_env(options: dict[str, Any], *, state: Path, cluster_name: str) -> dict[str, str]:
    """The workers' environment: this process's database (the test database under pytest) and keys."""
    db = connection.settings_dict
    url = (f"postgres://{quote(db['USER'] or '', safe='')}:{quote(str(db['PASSWORD'] or ''), safe='')}"
           f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}")
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DATABASE_URL": url,
        "SECRET_KEY": settings.SECRET_KEY, "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "PIN_FINGERPRINT_KEY": settings.PIN_FINGERPRINT_KEY, "DEBUG": "false",
        "Q_BROKER": options["broker"], CLUSTER_ENV: cluster_name, "Q_WORKERS": "2", STATE_ENV: str(state),
    }
    if options["broker"] == "redis":
        env["REDIS_URL"] = options["redis_url"]
    return env


@contextlib.contextmanager
def _broker(options: dict[str, Any], *, cluster_name: str) -> Iterator[Any]:
    """Enqueue from this process to the run's own queue (its cluster name), never inline: the engine's
    own `async_task` calls made here (a booking's dispatch) go to the workers too."""
    from django_q import tasks as q_tasks
    from django_q.brokers import orm, redis_broker
    from django_q.conf import Conf

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(Conf, "SYNC", False))
        quiet = logging.getLogger("django-q")  # one "Enqueued" line per task would drown the run's own words
        stack.callback(quiet.setLevel, quiet.level)
        quiet.setLevel(logging.WARNING)
        stack.enter_context(mock.patch.object(Conf, "CLUSTER_NAME", cluster_name))
        if options["broker"] == "redis":
            stack.enter_context(mock.patch.object(Conf, "REDIS", options["redis_url"]))
            stack.enter_context(mock.patch.object(Conf, "DJANGO_REDIS", None))
            broker: Any = redis_broker.Redis(list_key=cluster_name)
            try:
                broker.ping()
            except Exception as exc:
                raise CommandError(f"--broker redis: no Redis at {options['redis_url']} ({exc})") from exc
        else:
            broker = orm.ORM(list_key=cluster_name)
        stack.enter_context(mock.patch.object(q_tasks, "get_broker", lambda list_key=None: broker))
        yield broker


@contextlib.contextmanager
def _on_sigterm_exit() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does: through the `finally` that stops the workers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
