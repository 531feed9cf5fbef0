"""python -m bench [--quick] [NAME ...] — the DESIGN §12 targets, measured as ratios within one run.

A small runner: each bench is a module of this package with `run(report, quick)`; it prints one line per
target (PASS/FAIL with the figure, `info` for what has no target, `skip` with the reason) and the run
exits 1 if a target is missed. `--quick` runs the same checks on smaller fleets. Benches run on a
throwaway test database (PostgreSQL when DATABASE_URL is set, else SQLite); the fleet benches build
their own fleet databases beside it (bench/fleetdb.py) and need PostgreSQL.

    scale    tick, sweep, reconcile-due and health per unit of due work, 10,000 vs 100 doors
    pages    dashboard, lock, booking list and property page: server time and queries, 10,000 vs 10 bookings
    memory   a worker's memory over an hour of ticks and sweeps
    budget   vendor calls per lock per day from reconciliation and health, against published limits
    intake   webhook intake under gunicorn vs a bare view
    latency  booking saved → create command sent, with a real worker
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

BENCHES = ("scale", "pages", "memory", "budget", "intake", "latency")
RESULTS: list[tuple[str, str, bool]] = []


def report(name: str, measured: str, ok: bool) -> None:
    RESULTS.append((name, measured, ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {measured}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller fleets, same checks")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHES))
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown bench(es): {', '.join(sorted(unknown))} (choose from {', '.join(BENCHES)})")
    from bench import fleetdb

    # Stopped with SIGTERM, still drop the databases this run made (the `finally` below).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    setup_test_environment()
    logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per task the benches enqueue
    fleetdb.configure(base=connection.settings_dict["NAME"])
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    started = time.perf_counter()
    try:
        for name in args.names or BENCHES:
            try:
                module = importlib.import_module(f"bench.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"bench.{name}":
                    raise
                print(f"skip  {name}: bench/{name}.py is not in this tree", flush=True)
                continue
            bench_started = time.perf_counter()
            module.run(report, args.quick)
            print(f"info  {name} took {time.perf_counter() - bench_started:.0f}s", flush=True)
    finally:
        fleetdb.cleanup()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    failed = [name for name, _, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed in {time.perf_counter() - started:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
