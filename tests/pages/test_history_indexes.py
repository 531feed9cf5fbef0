"""Pages read a lock's codes through the (lock, status) index, so years of removed codes cost nothing
(DESIGN §12; found by `python -m bench pages` at 10,000 bookings): the code lists ask for the statuses
they show, never "every status but removed", which makes the database read the lock's whole history."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from locks.models import CodePurpose, CodeStatus
from tests import factories


def _code_queries_reading_history(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries
            if 'FROM "locks_accesscode"' in q["sql"] and """NOT ("locks_accesscode"."status" = 'removed')""" in q["sql"]]


def test_lock_and_property_pages_list_codes_by_the_statuses_they_show(client, world):
    client.force_login(world.bob)
    for url in (reverse("locks:lock_detail", args=["seaside", world.lock.pk]),
                reverse("property_detail", args=["seaside", world.dune.pk]),
                reverse("dashboard", args=["seaside"])):
        assert _code_queries_reading_history(client, url) == [], url


def test_the_lock_page_still_shows_failed_codes_and_hides_removed_ones(client, world):
    factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, booking=None, purpose=CodePurpose.CLEANER,
                                holder_name="Cleo Cleaner", name="Cleo", status=CodeStatus.FAILED, pin="735918")
    factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, booking=None, purpose=CodePurpose.CLEANER,
                                holder_name="Rex Removed", name="Rex", status=CodeStatus.REMOVED, pin="")
    client.force_login(world.bob)
    page = client.get(reverse("locks:lock_detail", args=["seaside", world.lock.pk])).content.decode()
    assert "Cleo" in page
    assert "Rex Removed" not in page


def test_the_dashboard_counts_what_the_locks_hold_not_the_removed_history(client, world):
    """Counting removed codes made the dashboard cost what the tenant had accumulated (2.7× at 1,000 past
    stays in `python -m bench --quick pages`); the number only ever grew and told staff nothing."""
    for n in range(3):
        factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, booking=None,
                                    purpose=CodePurpose.CLEANER, holder_name=f"Past {n}", name=f"Past {n}",
                                    status=CodeStatus.REMOVED, pin="")
    client.force_login(world.bob)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("dashboard", args=["seaside"])).content.decode()
    counting = [q["sql"] for q in captured.captured_queries
                if 'FROM "locks_accesscode"' in q["sql"] and "COUNT(" in q["sql"]]
    assert counting and all("'removed'" not in sql and '"locks_accesscode"."status" IN' in sql for sql in counting)
    assert "chip-removed" not in page and "chip-set" in page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_lock_pages_door_events_are_read_without_the_locks_history(client, world):
    """A door with a year of history has ~40,000 Activity rows and no door events in the bench fleet; the
    page's "what happened at the door" read them all (25 ms of a 45 ms page at 10,000 bookings)."""
    from django.utils import timezone

    from locks.models import Activity

    now = timezone.now()
    Activity.objects.bulk_create(
        Activity(tenant=world.seaside, lock=world.lock, verb="command.sent", message="history", created_at=now)
        for _ in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE locks_activity")
    client.force_login(world.bob)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("locks:lock_detail", args=["seaside", world.lock.pk])).status_code == 200
    door = [q["sql"] for q in captured.captured_queries if "code.first_used" in q["sql"]]
    assert len(door) == 1
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {door[0]}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "activity_door_events" in plan, plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_dashboards_code_queries_reach_codes_through_the_tenants_doors(client, world):
    """At 10,000 doors the dashboard cost 1.5–1.7× for a tenant with a long history (`python -m bench pages`):
    asked for "the tenant's live codes", PostgreSQL estimated that tenant's few live codes from the whole
    table (700 for 2), and hashed every door of every tenant to join them (50–80 ms). Reached through the
    tenant's doors, the `(lock, status)` index answers from the few live rows, whatever other tenants hold."""
    from datetime import timedelta

    from django.utils import timezone

    from locks.models import AccessCode, Lock

    now = timezone.now()
    # Another tenant's large fleet, every door with future codes: "unset" is common in the table...
    fleet = Lock.objects.bulk_create(
        Lock(tenant=world.harbor, property=world.harbor_property, provider_account=world.harbor_lock.provider_account,
             vendor_device_id=f"fleet-{n}", name=f"Fleet {n}") for n in range(1500)
    )
    AccessCode.objects.bulk_create(
        AccessCode(tenant=world.harbor, lock=lock, name=f"Future {n}-{k}", pin="", status=CodeStatus.UNSET,
                   starts_at=now + timedelta(hours=k), ends_at=now + timedelta(hours=k + 48))
        for n, lock in enumerate(fleet) for k in range(6)
    )
    # ...while this tenant's rows are years of removed codes and one code due today.
    AccessCode.objects.bulk_create(
        AccessCode(tenant=world.seaside, lock=world.lock, name=f"Past {n}", pin="", status=CodeStatus.REMOVED,
                   starts_at=now - timedelta(days=n + 2), ends_at=now + timedelta(hours=n % 48 + 1))
        for n in range(6000)
    )
    factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, booking=world.booking, name="Due today",
                                pin="615243", starts_at=now + timedelta(hours=2), ends_at=now + timedelta(days=2))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE locks_accesscode")
        cursor.execute("ANALYZE locks_lock")
    client.force_login(world.bob)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("dashboard", args=["seaside"])).content.decode()
    assert "Due today" in page
    code_queries = [q["sql"] for q in captured.captured_queries if 'FROM "locks_accesscode"' in q["sql"]]
    assert code_queries
    for sql in code_queries:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Seq Scan on locks_lock" not in plan and "Seq Scan on locks_accesscode" not in plan, f"{sql}\n{plan}"
