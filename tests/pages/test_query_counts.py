"""Pages cost the same number of queries whatever the number of rows (DESIGN §12)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from locks.models import Activity, CodeStatus, IssueKind
from portal.models import Booking
from tests import factories

STATUSES = [CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET, CodeStatus.FAILED]


def _fill(world, count: int, *, first: int = 0) -> None:
    """`count` bookings on Dune Cottage, each with a code (statuses mixed, some due soon), a command,
    an activity row, and every fifth with an open issue."""
    now = timezone.now()
    # Confirmed stays of a property never overlap: the world's own stay at Dune makes room for these.
    Booking.objects.filter(pk=world.booking.pk).update(status="cancelled")
    for n in range(first, first + count):
        check_in = now + timedelta(hours=6 + n * 30)
        booking = factories.BookingFactory(
            tenant=world.seaside, property=world.dune, guest_name=f"Guest {n}",
            check_in=check_in, check_out=check_in + timedelta(hours=20),
        )
        code = factories.AccessCodeFactory(
            tenant=world.seaside, lock=world.lock, booking=booking, status=STATUSES[n % len(STATUSES)],
            starts_at=check_in, ends_at=check_in + timedelta(hours=20), pin=f"{100000 + n * 37}",
        )
        factories.LockCommandFactory(tenant=world.seaside, lock=world.lock, access_code=code, state="succeeded")
        Activity.objects.create(
            tenant=world.seaside, lock=world.lock, access_code=code, booking=booking, verb="code.status",
            message=f"code {n} moved", created_at=now,
        )
        if n % 5 == 0:
            factories.LockIssueFactory(
                tenant=world.seaside, lock=world.lock, access_code=code, kind=IssueKind.NACK,
            )


PAGES = {
    "dashboard": lambda w: reverse("dashboard", args=["seaside"]),
    "booking_list": lambda w: reverse("booking_list", args=["seaside"]),
    "property_detail": lambda w: reverse("property_detail", args=["seaside", w.dune.pk]),
    "lock_detail": lambda w: reverse("locks:lock_detail", args=["seaside", w.lock.pk]),
    "owner_home": lambda w: reverse("owner_home", args=["seaside"]),
    "issue_list": lambda w: reverse("locks:issue_list", args=["seaside"]),
}


def _queries(client, url: str) -> int:
    client.get(url)  # warm the session and the content-type caches
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_it_costs_the_same_queries_with_10_and_200_bookings(client, world):
    # One fill for all pages: building 200 bookings is the slow part of this test.
    def counts() -> dict[str, int]:
        measured = {}
        for name, url in PAGES.items():
            client.force_login(world.olive if name == "owner_home" else world.bob)
            measured[name] = _queries(client, url(world))
        return measured

    _fill(world, 10)
    small = counts()
    _fill(world, 190, first=10)
    assert counts() == small
