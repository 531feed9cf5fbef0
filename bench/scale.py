"""Engine cost follows due work, not fleet size (DESIGN §12): tick, sweep, reconcile-due and health at
10,000 doors (200,000 live codes, a year of history) vs 100 doors, per unit of due work.

The same due work is made in both fleets, on doors spread over the fleet: 50 codes due to program
(tick), 50 commands left `sent` 10 minutes ago (sweep), 50 doors not read for 7 hours (reconcile-due
plus the reads it queues, as the dispatcher runs them); 20 of each with --quick. Health polls every door
of every account, so its unit is one door: the task's account query plus the poll of 3 accounts (300
doors) spread over the fleet, against the one account of 100 doors of the small fleet. Each figure is the
median of three rounds (two with --quick, which polls one account for health) after a warm-up round, the two fleets taking turns, each on its own clock;
between rounds the work just done is settled in SQL so every round starts alike.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from bench import fleetdb

Report = Callable[[str, str, bool], None]
DUE = 50
DUE_QUICK = 20
HEALTH_ACCOUNTS = 3
ROUNDS = 3
ROUNDS_QUICK = 2
LIMIT = 1.5


def sizes(quick: bool) -> tuple[int, int]:
    return (100, 1_000) if quick else (100, 10_000)


def page_history(quick: bool) -> int:
    return 990 if quick else 9_990


def run(report: Report, quick: bool) -> None:
    if not fleetdb.available():
        print("skip  scale: the bench fleets need DATABASE_URL on PostgreSQL", flush=True)
        return
    small, large = sizes(quick)
    costs = measure([small, large], quick=quick)
    for name, unit in (("tick", "due code"), ("sweep", "stale command"), ("reconcile-due", "due door"),
                       ("health", "door")):
        per_small, per_large = costs[small][name], costs[large][name]
        ratio = per_large / per_small
        report(f"{name} per {unit}: {large:,} vs {small:,} doors",
               f"{per_large * 1000:.2f} ms / {per_small * 1000:.2f} ms = {ratio:.2f}× (≤ {LIMIT}×)", ratio <= LIMIT)


def measure(sizes: list[int], *, quick: bool) -> dict[int, dict[str, float]]:
    """Seconds per unit of due work for each task on each fleet. The fleets take turns round by round,
    so both are measured under the same load (other work on this machine varies minute to minute)."""
    import time_machine

    due = DUE_QUICK if quick else DUE
    fleets = {size: fleetdb.fleet(size, page_history=page_history(quick)) for size in sizes}
    clocks = {size: fleet.t0 for size, fleet in fleets.items()}  # each fleet's own clock, moving on
    doors: dict[int, list[int]] = {}
    for size, fleet in fleets.items():
        with fleetdb.using(fleet.database):
            doors[size] = spread_doors(due)
    rounds: dict[str, Callable[[list[int], int], float]] = {
        "tick": lambda d, r: _tick_round(d, r) / len(d),
        "sweep": lambda d, r: _sweep_round(d, r) / len(d),
        "reconcile-due": lambda d, r: _reconcile_round(d) / len(d),
        "health": lambda d, r: _health_round(1 if quick else HEALTH_ACCOUNTS),
    }
    samples: dict[int, dict[str, list[float]]] = {size: {name: [] for name in rounds} for size in sizes}
    for name, round_ in rounds.items():
        for n in range((ROUNDS_QUICK if quick else ROUNDS) + 1):  # round 0 warms up: imports, caches, plans
            for size, fleet in fleets.items():
                started = time.perf_counter()
                with fleetdb.using(fleet.database), time_machine.travel(clocks[size], tick=True):
                    cost = round_(doors[size], n)
                clocks[size] += timedelta(seconds=time.perf_counter() - started + 1)
                if n:
                    samples[size][name].append(cost)
    costs = {size: {name: statistics.median(values) for name, values in by_name.items()}
             for size, by_name in samples.items()}
    for size in sizes:
        print(f"info  {size:,} doors, ms per unit: "
              + ", ".join(f"{name} {cost * 1000:.2f}" for name, cost in costs[size].items()), flush=True)
    return costs


def spread_doors(count: int) -> list[int]:
    """`count` doors of the fleet's tenants, spread evenly over them."""
    from locks.models import Lock

    ids = list(Lock.objects.filter(tenant__slug__startswith="fleet-").order_by("id").values_list("id", flat=True))
    step = max(1, len(ids) // count)
    return ids[::step][:count]


def fresh_pins(count: int, round_: int) -> list[str]:
    """`count` PINs every bench door accepts that none of the fleet's live codes use, new each round."""
    from locks.pins import validate_pin

    taken = set(fleetdb.fleet_pins())
    rng = random.Random(round_)
    pins: list[str] = []
    while len(pins) < count:
        pin = "".join(rng.choice("123456789") for _ in range(6))
        if pin not in taken and not pin.startswith("12") and not validate_pin(pin, {"code_lengths": [6]}):
            pins.append(pin)
            taken.add(pin)
    return pins


def _new_codes(doors: list[int], round_: int, *, status: str) -> list[int]:
    from locks.models import AccessCode, Lock
    from portal.encryption import fingerprint

    now = timezone.now()
    locks = list(Lock.objects.filter(pk__in=doors))
    made = [
        AccessCode(tenant_id=lock.tenant_id, lock=lock, name=f"Bench {round_}", pin=pin, pin_fingerprint=fingerprint(pin),
                   status=status, starts_at=now + timedelta(minutes=59), ends_at=now + timedelta(days=2),
                   program_at=now - timedelta(minutes=1))
        for lock, pin in zip(locks, fresh_pins(len(locks), round_), strict=True)
    ]
    return [code.pk for code in AccessCode.objects.bulk_create(made)]


def _settle(code_ids: list[int]) -> None:
    """The round's codes leave the lock's books and their commands end: the next round starts alike."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE locks_lockcommand SET state = 'succeeded', finished_at = now() "
                       "WHERE access_code_id = ANY(%s) AND state IN ('queued', 'sent')", [code_ids])
        cursor.execute("UPDATE locks_accesscode SET status = 'removed' WHERE id = ANY(%s)", [code_ids])


def _tick_round(doors: list[int], round_: int) -> float:
    from locks.tick import tick

    codes = _new_codes(doors, round_ + 100, status="unset")
    started = time.perf_counter()
    report = tick(now=timezone.now())
    elapsed = time.perf_counter() - started
    assert report.programmed == len(doors), f"tick programmed {report.programmed} of {len(doors)} due codes"
    _settle(codes)
    return elapsed


def _sweep_round(doors: list[int], round_: int) -> float:
    from locks.models import AccessCode, CommandState, LockCommand
    from locks.sweep import sweep

    codes = _new_codes(doors, round_ + 200, status="setting")
    sent_at = timezone.now() - timedelta(minutes=10)
    LockCommand.objects.bulk_create(
        LockCommand(tenant_id=code.tenant_id, lock_id=code.lock_id, access_code=code, action="create",
                    state=CommandState.SENT, sent_at=sent_at, sent_name=code.name,
                    sent_pin_fingerprint=code.pin_fingerprint)
        for code in AccessCode.objects.filter(pk__in=codes)
    )
    started = time.perf_counter()
    report = sweep(now=timezone.now())
    elapsed = time.perf_counter() - started
    assert report.polled == len(doors), f"sweep polled {report.polled} of {len(doors)} stale commands"
    _settle(codes)
    return elapsed


def _reconcile_round(doors: list[int]) -> float:
    from locks import tasks
    from locks.dispatch import dispatch_lock
    from locks.models import Lock

    Lock.objects.filter(pk__in=doors).update(last_reconciled_at=timezone.now() - timedelta(hours=7))
    started = time.perf_counter()
    queued = tasks.reconcile_due()
    for lock_id in doors:  # what the dispatch_lock tasks the reads enqueued do, one per door
        dispatch_lock(lock_id=lock_id, now=timezone.now())
    elapsed = time.perf_counter() - started
    assert queued == len(doors), f"reconcile_due queued {queued} reads for {len(doors)} due doors"
    fresh = Lock.objects.filter(pk__in=doors, last_reconciled_at__gte=timezone.now() - timedelta(minutes=5)).count()
    assert fresh == len(doors), f"{fresh} of {len(doors)} due doors were read"
    return elapsed


def _health_round(accounts: int) -> float:
    """Seconds per door of the health task: its account query over the whole fleet's doors, plus the poll
    of up to HEALTH_ACCOUNTS accounts spread over the fleet per door polled (the task polls every account
    alike; all 100 at 10,000 doors would take minutes a round on this machine)."""
    from locks.fleet import account_check_health
    from locks.models import Lock
    from providers.models import ProviderAccount

    fleet_accounts = ProviderAccount.objects.filter(tenant__slug__startswith="fleet-").order_by("id")
    ids = list(fleet_accounts.values_list("id", flat=True))
    sample = list(fleet_accounts.filter(pk__in=ids[:: max(1, len(ids) // accounts)][:accounts]))
    polled, doors = Lock.objects.filter(provider_account__in=sample).count(), Lock.objects.count()
    started = time.perf_counter()
    listed = list(ProviderAccount.objects.filter(locks__isnull=False).distinct())  # the task's own query
    listing = time.perf_counter() - started
    started = time.perf_counter()
    for account in sample:
        account_check_health(account=account, now=timezone.now())
    polling = time.perf_counter() - started
    assert len(listed) >= len(sample)
    return listing / doors + polling / polled
