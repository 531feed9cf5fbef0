"""One simulation per database.

The engine's tick, sweep and reconciliation act on every tenant of the database, not on the run's own: two
runs side by side — or a run beside the demo, or beside a fleet kept with `--keep` that still had work —
drive each other's codes, each on its own clock. Seen: a run's workers "removed" another run's codes a day
and a half early (their clock was ahead), and that run then reported a fortnight with no code started. So
a run holds a PostgreSQL advisory lock for its whole length, and refuses a database where another tenant
still has work the engine would do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.core.management.base import CommandError
from django.db import connection

from locks.models import LIVE_CODE_STATUSES, AccessCode, CommandState, LockCommand

SIMULATION_LOCK_KEY = 0x4C6F636B5374  # one key for every run on a database


@contextlib.contextmanager
def database_to_ourselves() -> Iterator[None]:
    """Hold the database for one run (PostgreSQL: an advisory lock; SQLite is one process anyway), after
    checking that no other tenant has codes or commands the engine would act on."""
    locked = False
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [SIMULATION_LOCK_KEY])
            locked = bool(cursor.fetchone()[0])
        if not locked:
            raise CommandError("another `simulate` run is using this database: give each run a database of its own "
                               "(the engine's tick and sweep act on every tenant)")
    try:
        _refuse_other_work()
        yield
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [SIMULATION_LOCK_KEY])


def _refuse_other_work() -> None:
    codes = AccessCode.objects.filter(status__in=LIVE_CODE_STATUSES)
    commands = LockCommand.objects.filter(state__in=(CommandState.QUEUED, CommandState.SENT))
    tenants = sorted(set(codes.values_list("tenant__slug", flat=True).distinct()[:5])
                     | set(commands.values_list("tenant__slug", flat=True).distinct()[:5]))
    if tenants:
        raise CommandError(
            f"this database holds codes or commands the engine would act on (tenants {', '.join(tenants)}): "
            "`simulate` runs the engine's tick and sweep, which act on every tenant, so it needs a database of "
            "its own (e.g. DATABASE_URL=postgres://…/lockstep_sim; remove fleets kept with --keep)"
        )
