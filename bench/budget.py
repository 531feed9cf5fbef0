"""Vendor calls are a budget (DESIGN §12): what reconciliation and health polling ask of each vendor per
lock per day, and whether a 10,000-lock fleet stays inside each vendor's published limits (VENDORS.md,
as `providers/limits.py` holds them).

Measured, not assumed: a virtual day (288 runs of reconcile-due, each followed by the reads it queued as
the dispatcher runs them, and 144 runs of health, on the schedule of `locks/apps.py`) on a sample fleet
with a counting adapter around the simulator, on the fleet's clock. The adapter calls are turned into
vendor HTTP requests with what each real adapter sends per call (`REQUESTS_PER_CALL`, read from
providers/<vendor>.py), then scaled to 10,000 locks in accounts of 100.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from bench import fleetdb

Report = Callable[[str, str, bool], None]
SAMPLE_DOORS = 4
FLEET = 10_000
DOORS_PER_ACCOUNT = 100
DAY = timedelta(days=1)

# Vendor HTTP requests per adapter call (one page of results; page sizes are not in VENDORS.md).
# list_devices: per account, plus per device where the vendor's list lacks online/battery.
REQUESTS_PER_CALL: dict[str, dict[str, tuple[int, int]]] = {  # call → (per call, per device listed)
    # read_codes: /access_codes/list + /access_codes/unmanaged/list; list_devices: /devices/list.
    "seam": {"read_codes": (2, 0), "list_devices": (1, 0)},
    # read_codes: GET /devices/{id}/status; list_devices: GET /devices, then /status and /health per device.
    "smartthings": {"read_codes": (1, 0), "list_devices": (1, 2)},
    # read_codes: POST /smartlock/{id}/sync (the lock's radio wakes) + GET /smartlock/{id}/auth; GET /smartlock.
    "nuki": {"read_codes": (2, 0), "list_devices": (1, 0)},
    # read_codes: GET /devices/{id}/accesscodes; list_devices: GET /devices.
    "schlage": {"read_codes": (1, 0), "list_devices": (1, 0)},
}
WRITES = ("create_code", "update_code", "delete_code", "delete_observed_code", "reload_codes")
WRITE_ACTIONS = {"create_code": "create", "update_code": "update", "delete_code": "delete",
                 "delete_observed_code": "remove_code", "reload_codes": "reload_codes"}


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count every call the engine makes on the simulator's adapter, by method."""
    from providers.simulator import SimulatorProvider

    calls: Counter[str] = Counter()
    originals = {name: getattr(SimulatorProvider, name)
                 for name in ("read_codes", "list_devices", "command_status", *WRITES)}

    def wrap(name: str, method: Callable[..., object]) -> Callable[..., object]:
        def counted(self: object, *args: object, **kwargs: object) -> object:
            calls[name] += 1
            return method(self, *args, **kwargs)
        return counted

    for name, method in originals.items():
        setattr(SimulatorProvider, name, wrap(name, method))
    try:
        yield calls
    finally:
        for name, method in originals.items():
            setattr(SimulatorProvider, name, method)


def virtual_day(hours: int = 24) -> tuple[Counter[str], int, int]:
    """(adapter calls per day, doors, accounts) of `hours` virtual hours of reconcile-due and health on
    the sample, scaled to a day."""
    import time_machine

    from locks import tasks
    from locks.conf import engine
    from locks.dispatch import dispatch_lock, locks_with_ready_commands
    from locks.models import Lock

    fleet = fleetdb.fleet(SAMPLE_DOORS, page_history=0)
    with fleetdb.using(fleet.database), time_machine.travel(fleet.t0, tick=False) as clock, counting() as calls:
        doors = Lock.objects.count()
        # Last read spread evenly over the reconciliation period, as a fleet's are after its first days.
        for n, lock_id in enumerate(Lock.objects.order_by("id").values_list("id", flat=True)):
            Lock.objects.filter(pk=lock_id).update(last_reconciled_at=fleet.t0 - engine().reconcile_every * n / doors)
        accounts = Lock.objects.values("provider_account").distinct().count()
        for step in range(int(timedelta(hours=hours) / timedelta(minutes=5))):
            now = fleet.t0 + timedelta(minutes=5 * step)
            clock.move_to(now)
            tasks.reconcile_due()
            for lock_id in locks_with_ready_commands(now=now):
                dispatch_lock(lock_id=lock_id, now=now)
            if step % 2 == 0:
                tasks.health()
    return Counter({name: round(n * 24 / hours) for name, n in calls.items()}), doors, accounts


def run(report: Report, quick: bool) -> None:
    if not fleetdb.available():
        print("skip  budget: the bench fleets need DATABASE_URL on PostgreSQL", flush=True)
        return
    from locks.conf import engine
    from providers.limits import VENDOR_LIMITS

    started = time.perf_counter()
    hours = 6 if quick else 24  # --quick: one reconciliation period, scaled to a day
    calls, doors, accounts = virtual_day(hours)
    reads = calls["read_codes"] / doors
    lists = calls["list_devices"] / accounts
    writes = {name: calls[name] / doors for name in WRITES}
    print(f"info  budget: {hours} virtual hours (per day below) on {doors} doors in {accounts} accounts ({time.perf_counter() - started:.0f}s): "
          f"{reads:.2f} lock reads per lock (RECONCILE_EVERY_HOURS={engine().RECONCILE_EVERY_HOURS} gives "
          f"{24 / engine().RECONCILE_EVERY_HOURS:.0f}), {lists:.0f} device lists per account (every 10 min gives 144), "
          f"{sum(writes.values()):.2f} writes per lock, {calls['command_status'] / doors:.2f} status polls per lock",
          flush=True)
    accounts_10k = math.ceil(FLEET / DOORS_PER_ACCOUNT)
    for vendor, per_call in REQUESTS_PER_CALL.items():
        read_requests = reads * per_call["read_codes"][0]
        list_fixed, list_per_device = per_call["list_devices"]
        health_requests = lists * (list_fixed / DOORS_PER_ACCOUNT + list_per_device)
        per_lock_day = read_requests + health_requests
        per_minute = per_lock_day * FLEET / 1440
        print(f"info  {vendor}: {per_lock_day:.1f} requests per lock per day from polling ({read_requests:.1f} for "
              f"reads, {health_requests:.1f} for health); {FLEET:,} locks in {accounts_10k} accounts of "
              f"{DOORS_PER_ACCOUNT}: {per_minute:,.0f} a minute in all, {per_minute / accounts_10k:.1f} a minute per "
              f"account", flush=True)
        limits = [limit for limit in VENDOR_LIMITS.get(vendor, ()) if limit.capacity]
        if not limits:
            print(f"info  {vendor}: VENDORS.md publishes no rate limit"
                  + (" (Schlage: set LOCKSTEP['SCHLAGE_COMMANDS_PER_MINUTE'] to the subscription's)"
                     if vendor == "schlage" else " (\"free and not limited\", abuse protection only)"
                     if vendor == "nuki" else "")
                  + "; nothing to check polling against", flush=True)
            continue
        for limit in limits:
            # What polling spends of this limit: the write calls it counts, per lock (or account) per minute.
            spent_per_lock_day = sum(rate for name, rate in writes.items() if WRITE_ACTIONS[name] in limit.actions)
            scope = 1 if limit.per == "device" else DOORS_PER_ACCOUNT
            per_period = spent_per_lock_day * scope / 1440 * (limit.period_seconds / 60)
            report(f"{vendor} polling within its published limit ({limit.describe(limit.capacity)})",
                   f"{per_period:.3f} counted calls {'per lock' if limit.per == 'device' else 'per account'} "
                   f"a minute (≤ {limit.capacity}); reads and device lists are not counted by this limit and "
                   f"VENDORS.md publishes none for them", per_period <= limit.capacity)
