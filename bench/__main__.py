"""python -m bench — the DESIGN §12 targets, measured as ratios within one run on a throwaway database.

Prints one line per target and exits 1 if a target is missed. Uses DATABASE_URL when set (PostgreSQL
is what production runs), else a throwaway SQLite file.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import fleet, intake, latency  # noqa: E402

RESULTS: list[tuple[str, str, bool]] = []


def report(name: str, measured: str, ok: bool) -> None:
    RESULTS.append((name, measured, ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {measured}", flush=True)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_tick(small: int = 2_000, large: int = 200_000, due: int = 1_000) -> None:
    """Tick cost follows due work: 1,000 due codes among 200,000 historic ones ≤ 1.5× among 2,000."""
    from locks.tick import tick

    def run(history: int, slug: str) -> float:
        now = timezone.now()
        tenant, prop, account = fleet.tenant_with_account(slug)
        history_locks = fleet.locks(tenant, prop, account, 20)
        fleet.history(history_locks, history, now=now)
        samples = []
        for _ in range(3):  # fresh locks each round, so every round dispatches the same work
            fleet.due_codes(fleet.locks(tenant, prop, account, 50), due, now=now)
            samples.append(timed(lambda: [tick(now=now) for _ in range(3)]))
        return statistics.median(samples)

    t_small = run(small, "tick-small")
    t_large = run(large, "tick-large")
    ratio = t_large / t_small
    report("tick: 1,000 due among 200,000 vs 2,000 historic", f"{t_large:.2f}s / {t_small:.2f}s = {ratio:.2f}× (≤ 1.5×)",
           ratio <= 1.5)


def bench_sweep(small: int = 2_000, large: int = 200_000, stale: int = 100) -> None:
    """Sweep cost follows what is stale, not what exists."""
    from locks.models import CommandState, LockCommand
    from locks.sweep import sweep

    def run(history: int, slug: str) -> float:
        now = timezone.now()
        tenant, prop, account = fleet.tenant_with_account(slug)
        fleet.history(fleet.locks(tenant, prop, account, 20), history, now=now)
        samples = []
        for _ in range(3):
            lock_list = fleet.locks(tenant, prop, account, stale)
            codes = fleet.due_codes(lock_list, stale, now=now)
            LockCommand.objects.bulk_create(
                LockCommand(tenant=tenant, lock_id=c.lock_id, access_code=c, action="create",
                            state=CommandState.SENT, sent_at=now - timedelta(minutes=10), vendor_ref=f"x-{c.pk}")
                for c in codes
            )
            samples.append(timed(lambda: sweep(now=now)))
        return statistics.median(samples)

    t_small = run(small, "sweep-small")
    t_large = run(large, "sweep-large")
    ratio = t_large / t_small
    report("sweep: 100 stale among 200,000 vs 2,000 historic", f"{t_large:.2f}s / {t_small:.2f}s = {ratio:.2f}× (≤ 1.5×)",
           ratio <= 1.5)


def bench_page_queries() -> None:
    """The number of SQL queries of a page does not grow with rows (10 vs 1,000 bookings)."""
    from locks.models import AccessCode
    from portal.models import Booking, Membership, Role

    user = get_user_model().objects.create_user("bench-staff", password="x")
    counts: dict[str, list[int]] = {}
    for rows, slug in ((10, "pages-small"), (1_000, "pages-large")):
        now = timezone.now()
        tenant, prop, account = fleet.tenant_with_account(slug)
        Membership.objects.create(user=user, tenant=tenant, role=Role.STAFF)
        lock = fleet.locks(tenant, prop, account, 1)[0]
        fleet.bookings(tenant, prop, rows, now=now)
        codes = fleet.due_codes([lock], rows, now=now)
        for booking, code in zip(Booking.objects.filter(tenant=tenant).order_by("id"), codes, strict=True):
            code.booking = booking
        AccessCode.objects.bulk_update(codes, ["booking"])
        client = Client()
        client.force_login(user)
        pages = {
            "dashboard": reverse("dashboard", args=[slug]),
            "booking list": reverse("booking_list", args=[slug]),
            "property page": reverse("property_detail", args=[slug, prop.pk]),
            "lock page": reverse("locks:lock_detail", args=[slug, lock.pk]),
        }
        for name, url in pages.items():
            with CaptureQueriesContext(connection) as ctx:
                status = client.get(url).status_code
            assert status == 200, f"{name} answered {status}"
            counts.setdefault(name, []).append(len(ctx.captured_queries))
    for name, (small, large) in counts.items():
        report(f"queries of the {name}: 10 vs 1,000 bookings", f"{small} vs {large}", small == large)


def main() -> int:
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        which = set(sys.argv[1:]) - {"--quick"}
        quick = "--quick" in sys.argv[1:]
        for name, fn in (("tick", bench_tick), ("sweep", bench_sweep), ("intake", lambda: intake.run(report, quick)),
                         ("pages", bench_page_queries), ("latency", lambda: latency.run(report, quick))):
            if not which or name in which:
                fn()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    failed = [name for name, _, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
