"""Activity as CSV: tenant-scoped, filtered by dates (the tenant's days), property, lock and kind; editors
only; bad filters say why and export nothing; a PIN never reaches the file."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from locks.actions import code_regenerate_pin, code_reveal_pin
from locks.activity import activity_record
from locks.models import Activity
from portal import services


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def history(world):
    """Rows on both Seaside properties and one in Harbor, on two New York days."""
    day1 = datetime(2031, 7, 1, 16, 0, tzinfo=UTC)  # 12:00 EDT
    day2 = datetime(2031, 7, 2, 3, 30, tzinfo=UTC)  # 23:30 EDT on July 1st
    day3 = datetime(2031, 7, 3, 14, 0, tzinfo=UTC)
    activity_record(tenant_id=world.seaside.pk, verb="code.status", message="Code 'Ana' on Dune front: unset → set",
                    now=day1, code=world.code, data={"from": "unset", "to": "set", "note": "webhook"})
    activity_record(tenant_id=world.seaside.pk, verb="lock.offline", message="Harbor front went offline",
                    now=day2, lock_id=world.other_lock.pk)
    activity_record(tenant_id=world.seaside.pk, verb="issue.opened", message="Issue opened: Lock offline",
                    now=day3, lock_id=world.other_lock.pk, data={"kind": "device_offline"})
    activity_record(tenant_id=world.harbor.pk, verb="lock.offline", message="Old Town door went offline",
                    now=day1, lock_id=world.harbor_lock.pk)


def test_it_exports_the_tenants_activity_in_words_and_local_time(client, world, history):
    client.force_login(world.bob)
    rows = _csv(client.get(reverse("activity_export_csv", args=["seaside"])))
    assert [row["lock"] for row in rows] == ["Dune front", "Harbor front", "Harbor front"]
    first = rows[0]
    assert first["when"] == "Tue Jul 1 2031, 12:00 EDT"
    assert first["when_iso"] == "2031-07-01T12:00:00-04:00"
    assert first["what"] == "Dune front: Ana Costa's code is on the lock, confirmed by the vendor"
    assert first["event"] == "code.status" and first["property"] == "Dune Cottage"
    assert all("Old Town" not in value for row in rows for value in row.values())


def test_it_filters_by_the_tenants_days_property_lock_and_kind(client, world, history):
    client.force_login(world.alice)
    url = reverse("activity_export_csv", args=["seaside"])
    # 23:30 EDT on July 1st is July 1st for a New York tenant, though July 2nd in UTC.
    day = _csv(client.get(url, {"start": "2031-07-01", "end": "2031-07-01"}))
    assert [row["what"] for row in day][1] == "Harbor front: The lock went offline"
    assert len(day) == 2
    assert [r["lock"] for r in _csv(client.get(url, {"property": world.dune.pk}))] == ["Dune front"]
    assert len(_csv(client.get(url, {"lock": world.other_lock.pk}))) == 2
    assert [r["event"] for r in _csv(client.get(url, {"kind": "issue"}))] == ["issue.opened"]


@pytest.mark.parametrize("params, error", [
    ({"start": "July 1st"}, "Enter the first day as YYYY-MM-DD."),
    ({"start": "2031-07-02", "end": "2031-07-01"}, "The last day comes before the first."),
    ({"start": "2030-01-01", "end": "2031-07-01"}, "Export at most 366 days at a time."),
    ({"kind": "secrets"}, "Unknown kind of activity."),
    ({"property": "not-a-number"}, "Unknown property."),
])
def test_it_refuses_bad_filters_with_a_reason_and_no_file(client, world, history, params, error):
    client.force_login(world.bob)
    response = client.get(reverse("activity_export_csv", args=["seaside"]), params)
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("text/csv")
    assert error in response.content.decode()


def test_another_tenants_property_or_lock_is_an_unknown_choice(client, world, history):
    client.force_login(world.alice)
    url = reverse("activity_export_csv", args=["seaside"])
    assert "Unknown property." in client.get(url, {"property": world.harbor_property.pk}).content.decode()
    assert "Unknown lock." in client.get(url, {"lock": world.harbor_lock.pk}).content.decode()


def test_mallory_gets_404(client, world, history):
    client.force_login(world.mallory)
    assert client.get(reverse("activity_export_csv", args=["seaside"])).status_code == 404
    assert client.get(reverse("activity_export", args=["seaside"])).status_code == 404
    own = _csv(client.get(reverse("activity_export_csv", args=["harbor"])))
    assert [row["lock"] for row in own] == ["Old Town door"]


def test_olive_the_owner_gets_403(client, world, history):
    client.force_login(world.olive)
    assert client.get(reverse("activity_export_csv", args=["seaside"])).status_code == 403
    assert client.get(reverse("activity_export", args=["seaside"])).status_code == 403


def test_the_dashboard_links_to_the_export_page_for_editors(client, world):
    client.force_login(world.bob)
    dashboard = client.get(reverse("dashboard", args=["seaside"])).content.decode()
    assert reverse("activity_export", args=["seaside"]) in dashboard
    page = client.get(reverse("activity_export", args=["seaside"])).content.decode()
    assert reverse("activity_export_csv", args=["seaside"]) in page and 'name="kind"' in page


def test_a_pin_never_reaches_the_file_even_if_a_message_held_one(client, world):
    activity_record(tenant_id=world.seaside.pk, verb="code.note", message="PIN 483920 read to the guest",
                    now=timezone.now(), code=world.code)
    client.force_login(world.bob)
    body = "".join(str(value) for row in _csv(client.get(reverse("activity_export_csv", args=["seaside"])))
                   for value in row.values())
    assert "483920" not in body and "PIN •••• read to the guest" in body


def test_the_engine_writes_no_pin_into_activity(world):
    """PIN changes, reveals and bookings are recorded without the PIN (so no export can leak it)."""
    now = timezone.now()
    booking = services.booking_create(
        tenant=world.seaside, property=world.dune, guest_name="Cleo Park", check_in=now + timedelta(days=5),
        check_out=now + timedelta(days=7), now=now,
    )
    pins = {code.pin for code in booking.access_codes.all()} | {world.code.pin}
    code_reveal_pin(code=world.code, actor=world.bob, now=now)
    pins.add(code_regenerate_pin(code=world.code, actor=world.bob, now=now).pin)
    pins.discard("")
    assert pins
    for activity in Activity.objects.all():
        text = activity.message + repr(activity.data)
        assert not any(pin in text for pin in pins), (activity.verb, activity.message)
