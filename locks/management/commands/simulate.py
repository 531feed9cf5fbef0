"""`manage.py simulate`: a fresh simulated fleet, the whole engine, a virtual clock, one JSON report.

The run builds its own tenant (slug `sim-<seed>-<random>`; deleted at the end unless `--keep`), one
simulator account with the chosen fault preset, `--locks` virtual locks (two per property, profiles in
turn seam / smartthings / nuki / schlage) and `--bookings` bookings spread over `--days` days; a quarter
of them arrive during the run, a few are cancelled or extended. The wall clock is frozen at the virtual
time (time-machine), so everything the engine stamps — tasks included, which run inline — agrees with it.

Each step: bookings due now → `simulator_advance` (completions, webhooks through `webhook_ingest`) →
`tick` → `sweep` → reconciliation of due locks. The clock then jumps to the next moment anything is due
(a program_at, a window start or end, a retry, a stale command, a simulated completion, a reconciliation),
in whole minutes.

Report keys: `codes` (codes created), `by_status` (at the end), `started` (codes whose window started during
the run and were still wanted then), `set_in_window` (started codes `set` by the engine at their
starts_at), `late_with_issue` (started, not set in time, with an issue on the code or a lock-wide issue
open at starts_at), `unexplained` (the rest of started), `silently_wrong` (at the end: codes whose portal
status disagrees with what the simulated lock holds, with no open issue saying so), `duplicate_pins_on_lock`
(PINs held twice on one lock, or live twice in the portal), `double_sends` (a command sent twice, or the
same change sent while the first was still being carried out), `left_after_end` (codes still on a lock more
than an hour after ends_at with no open issue), `vendor_calls` (simulator calls by action), the budget keys
(`writes`, `writes_per_code`, `status_polls_per_write`, `reads_per_lock_per_day`, `set_in_window_pct`) and
`early_exposure` (mean and max minutes a code was live on a just-in-time lock before its window, and the
tenant's maximum: `--check` fails beyond it), `lead_changes` (times a lock's adaptive lead moved; `--check`
with `--faults none` fails on any), `booking_overlaps_refused` (channel bookings refused because staff had moved
another stay into their dates), `seconds`; and the guests' messages (guests.py): `messages_sent`,
`messages_unconfirmed_pin` (a message carrying a PIN its door did not hold when it was sent; `--check` fails on
any), `messages_after_vendor_lie` (the same, where the simulated vendor had lied about that code), and
`guests_not_told_by_checkin` / `guests_not_told_unexplained` (not told by check-in with no `guest_not_told`
issue; `--check` fails on any).

`--workers K` runs the same fleet with the engine in K real `qcluster` processes on PostgreSQL, sampling
invariants during the run (more keys, same `--check`): see locks/management/simulation/.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from locks.management.simulation.exclusive import database_to_ourselves
from locks.management.simulation.fleet import (
    START,
    fleet_build,
    fleet_delete,
    fleet_report,
    fleet_run,
    invariant_problems,
)
from locks.management.simulation.guests import recording_backends
from providers.simulator import FAULT_PRESETS

__all__ = ["Command", "invariant_problems", "tasks_inline"]


class Command(BaseCommand):
    help = "Run the engine against a fresh simulated fleet on a virtual clock and print one JSON report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bookings", type=int, default=200)
        parser.add_argument("--locks", type=int, default=20)
        parser.add_argument("--days", type=int, default=14)
        parser.add_argument("--faults", choices=sorted(FAULT_PRESETS), default="default")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--check", action="store_true", help="exit non-zero when an invariant breaks")
        parser.add_argument("--keep", action="store_true", help="keep the simulated tenant afterwards")
        workers = parser.add_argument_group("multi-worker mode (PostgreSQL; see locks/management/simulation/)")
        workers.add_argument("--workers", type=int, default=0, help="run the engine in K real qcluster processes")
        workers.add_argument("--broker", choices=("orm", "redis"), default="orm")
        workers.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
        workers.add_argument("--latency", type=int, default=0, metavar="MS",
                             help="the simulated vendor answers each call after MS real milliseconds")
        workers.add_argument("--kill-workers", action="store_true",
                             help="SIGKILL a worker, a cluster leader or the whole fleet now and then")
        workers.add_argument("--max-minutes", type=float, default=60.0,
                             help="real-time bound of a multi-worker run (an unfinished run fails --check)")

    def handle(self, *args: Any, **options: Any) -> None:
        began = time.perf_counter()
        with database_to_ourselves():
            self._handle(began, options)

    def _handle(self, began: float, options: dict[str, Any]) -> None:
        import time_machine

        from locks.pins import use_rng

        if options["workers"] > 0:
            self._handle_workers(began, options)
            return
        if options["latency"] or options["kill_workers"]:
            raise CommandError("--latency and --kill-workers need --workers")
        if connection.vendor == "sqlite":
            # A simulation writes tens of thousands of small transactions; waiting for the disk on each
            # would take minutes. Durability of this connection's writes is not worth that here.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=OFF")
        with time_machine.travel(START, tick=False) as traveller, tasks_inline(), recording_backends(), \
                use_rng(random.Random(f"pins-{options['seed']}")):
            fleet = fleet_build(
                bookings=options["bookings"], locks=options["locks"], days=options["days"],
                faults=options["faults"], seed=options["seed"],
            )
            observations = fleet_run(fleet, move_to=traveller.move_to)
            report = fleet_report(fleet, observations)
        if options["keep"]:
            self.stderr.write(f"kept tenant {fleet.tenant.slug}")
        else:
            fleet_delete(fleet)
        per_code, unexplained = report.pop("_per_code"), report.pop("_unexplained")
        untrue, untold = report.pop("_unconfirmed_messages", []), report.pop("_not_told_unexplained", [])
        if untrue:
            self.stderr.write(f"(message id, code id) of messages carrying a PIN its door did not hold: {untrue}")
        if untold:
            self.stderr.write(f"stays whose guest was not told by check-in, with no issue saying so: {untold}")
        self._report(report, began=began, options=options, per_code=per_code, unexplained=unexplained, extra=[])

    def _handle_workers(self, began: float, options: dict[str, Any]) -> None:
        from locks.management.simulation.run import simulate_with_workers, worker_problems

        report, per_code, unexplained = simulate_with_workers(options, log=self.stderr)
        self._report(report, began=began, options=options, per_code=per_code, unexplained=unexplained,
                     extra=worker_problems(report))

    def _report(self, report: dict[str, Any], *, began: float, options: dict[str, Any],
                per_code: list[dict[str, Any]], unexplained: list[int], extra: list[str]) -> None:
        report["seconds"] = round(time.perf_counter() - began, 2)
        self.stdout.write(json.dumps(report, sort_keys=True))
        if options["check"]:
            problems = invariant_problems(report, faults=options["faults"], per_code=per_code,
                                          coverage_floor=not options.get("workers")) + extra
            for problem in problems:
                self.stderr.write(f"invariant broken: {problem}")
            if problems and unexplained:
                self.stderr.write(f"unexplained code ids: {unexplained[:20]} (see them with --keep)")
            if problems:
                sys.exit(1)


@contextlib.contextmanager
def tasks_inline() -> Iterator[None]:
    """Run django-q2 tasks in this process at once (like the test settings' sync mode), without
    writing task rows or touching the broker: the virtual clock must not leak into a real worker."""

    def run_now(func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        kwargs = {k: v for k, v in kwargs.items()
                  if not k.startswith(("q_", "hook", "group", "task_name", "broker"))}
        if isinstance(func, str):
            module_name, name = func.rsplit(".", 1)
            call: Callable[..., Any] = getattr(importlib.import_module(module_name), name)
        else:
            call = func
        return call(*args, **kwargs)

    from django_q.conf import Conf

    # SYNC too, so code that asks django-q whether tasks run inline (the webhook intake) enqueues through
    # `async_task` after commit instead of writing a task row for a worker.
    with mock.patch("django_q.tasks.async_task", run_now), mock.patch.object(Conf, "SYNC", True):
        yield
