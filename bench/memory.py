"""A worker's memory stays flat (DESIGN §12): an hour of the worker's minute work — the simulated clouds
advance, the tick, the sweep — in one process on the fleet's clock moved a minute at a time, on the
10,000-door bench fleet with work flowing: two codes come due every minute (programmed by the tick, sent
to the simulated lock, confirmed by its webhook or asked about by the sweep five minutes later).

Resident memory (VmRSS) is read after every minute; the first ten minutes are warm-up (imports, caches,
the first query plans). Target: growth over the remaining fifty at most 10 % of the memory after warm-up.
With --quick: twelve minutes on the 1,000-door fleet, four of warm-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from bench import fleetdb, scale

Report = Callable[[str, str, bool], None]
MINUTES = 60
WARM_UP = 10
QUICK = (12, 4)  # --quick: twelve minutes, four of them warm-up
DUE_A_MINUTE = 2
LIMIT = 0.10


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def run(report: Report, quick: bool) -> None:
    if not fleetdb.available():
        print("skip  memory: the bench fleets need DATABASE_URL on PostgreSQL", flush=True)
        return
    import time_machine

    from locks.sweep import sweep
    from locks.tick import tick
    from providers.simulator_tasks import advance_all

    minutes, warm_up = QUICK if quick else (MINUTES, WARM_UP)
    locks = scale.sizes(quick)[1]
    fleet = fleetdb.fleet(locks, page_history=scale.page_history(quick))
    rss: list[int] = []
    programmed = polled = 0
    started = time.perf_counter()
    with fleetdb.using(fleet.database), time_machine.travel(fleet.t0, tick=False) as clock:
        _due_codes(start=fleet.t0, minutes=minutes)
        for minute in range(minutes):
            now = fleet.t0 + timedelta(minutes=minute, seconds=30)
            clock.move_to(now)
            advance_all()
            programmed += tick(now=now).programmed
            polled += sweep(now=now).polled
            rss.append(rss_bytes())
    elapsed = time.perf_counter() - started
    base, peak, last = rss[warm_up - 1], max(rss[warm_up:]), rss[-1]
    growth = (peak - base) / base
    print(f"info  memory: {minutes} minutes on {locks:,} doors in {elapsed:.0f}s: {programmed} codes programmed, "
          f"{polled} commands polled; RSS {rss[0] / 2**20:.1f} MB after the first minute, {base / 2**20:.1f} MB "
          f"after warm-up, peak {peak / 2**20:.1f} MB, last {last / 2**20:.1f} MB", flush=True)
    report(f"worker memory over {minutes} minutes of ticks and sweeps ({locks:,} doors)",
           f"+{growth:.1%} after warm-up ({base / 2**20:.1f} → {peak / 2**20:.1f} MB peak; ≤ {LIMIT:.0%})",
           growth <= LIMIT)


def _due_codes(*, start: datetime, minutes: int) -> None:
    """DUE_A_MINUTE codes due each minute, each on a door of its own."""
    from locks.models import AccessCode, Lock
    from portal.encryption import fingerprint

    doors = list(Lock.objects.filter(pk__in=scale.spread_doors(minutes * DUE_A_MINUTE)))
    pins = scale.fresh_pins(len(doors), 900)
    AccessCode.objects.bulk_create(
        AccessCode(tenant_id=lock.tenant_id, lock=lock, name=f"Hour guest {n}", pin=pin,
                   pin_fingerprint=fingerprint(pin), status="unset",
                   program_at=start + timedelta(minutes=n // DUE_A_MINUTE),
                   starts_at=start + timedelta(minutes=n // DUE_A_MINUTE + 60), ends_at=start + timedelta(days=2))
        for n, (lock, pin) in enumerate(zip(doors, pins, strict=True))
    )
