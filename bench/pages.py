"""Pages cost what they show, not what the tenant has accumulated (DESIGN §12): the dashboard, a lock
page, the booking list and a property page, server time (Django's test client, in process) and SQL
queries, for a tenant with 10,000 bookings vs one with 10, both inside the 10,000-door bench fleet.

Both tenants have one property of two doors with the current stay and nine ahead (each with a code on
both doors, plus four people's codes a door); the large one also has 9,990 stays behind it, with their
removed codes, commands, Activity and webhook events (bench/fleetdb.py). What the pages show is the
same; what the database holds is not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench import fleetdb, scale

Report = Callable[[str, str, bool], None]
SAMPLES = 11
LIMIT = 1.5


def run(report: Report, quick: bool) -> None:
    if not fleetdb.available():
        print("skip  pages: the bench fleets need DATABASE_URL on PostgreSQL", flush=True)
        return
    import time_machine

    history = scale.page_history(quick)
    fleet = fleetdb.fleet(scale.sizes(quick)[1], page_history=history)
    with fleetdb.using(fleet.database), time_machine.travel(fleet.t0, tick=True):
        small, large = measure("pages-small", "pages-large")
    bookings = f"{history + 10:,} vs 10 bookings"
    for name, (t_small, q_small) in small.items():
        t_large, q_large = large[name]
        ratio = t_large / t_small
        report(f"{name} server time: {bookings}", f"{t_large * 1000:.1f} ms / {t_small * 1000:.1f} ms = {ratio:.2f}× "
               f"(≤ {LIMIT}×)", ratio <= LIMIT)
        report(f"{name} queries: {bookings}", f"{q_large} vs {q_small} (equal)", q_large == q_small)


def measure(*slugs: str) -> list[dict[str, tuple[float, int]]]:
    """Median server time (seconds) and query count of each page, per tenant `slug`. The tenants take turns
    sample by sample, so a machine whose load changes meanwhile weighs on both sides of each ratio alike."""
    from django.contrib.auth import get_user_model

    from locks.models import Lock
    from portal.models import Property

    client = Client()
    client.force_login(get_user_model().objects.get(username=fleetdb.PAGE_USER))
    urls: list[dict[str, str]] = []
    for slug in slugs:
        prop = Property.objects.get(tenant__slug=slug)
        lock = Lock.objects.filter(property=prop).order_by("id").first()
        assert lock is not None, f"{slug} has no door"
        urls.append({
            "dashboard": reverse("dashboard", args=[slug]),
            "lock page": reverse("locks:lock_detail", args=[slug, lock.pk]),
            "booking list": reverse("booking_list", args=[slug]),
            "property page": reverse("property_detail", args=[slug, prop.pk]),
        })
    measured: list[dict[str, tuple[float, int]]] = [{} for _ in slugs]
    for name in urls[0]:
        counts = []
        for slug, pages in zip(slugs, urls, strict=True):
            status = client.get(pages[name]).status_code  # warm-up: templates, plans, caches
            assert status == 200, f"{name} of {slug} answered {status}"
            with CaptureQueriesContext(connection) as queries:
                client.get(pages[name])
            counts.append(len(queries.captured_queries))  # now: the next request clears the connection's log
        samples: list[list[float]] = [[] for _ in slugs]
        for _ in range(SAMPLES):
            for n, pages in enumerate(urls):
                started = time.perf_counter()
                client.get(pages[name])
                samples[n].append(time.perf_counter() - started)
        for n in range(len(slugs)):
            measured[n][name] = (statistics.median(samples[n]), counts[n])
    return measured
