"""Confirmed bookings of one property never overlap, from every source, even when ten arrive at once;
the error names the clashing booking. (Feeds and CSV: tests/integrations.)"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from portal.models import Booking, BookingStatus
from portal.services import BookingOverlap, booking_create, booking_update
from portal.timeline import Bar, Row, timeline_svg
from tests.api.test_bookings import stay

UTC = ZoneInfo("UTC")


def _form(prop, check_in: datetime, check_out: datetime, guest: str = "Rosa Delgado") -> dict[str, str]:
    tz = ZoneInfo(prop.timezone)
    check_in, check_out = check_in.astimezone(tz), check_out.astimezone(tz)
    return {"property": str(prop.pk), "guest_name": guest, "check_in_date": check_in.date().isoformat(),
            "check_in_time": check_in.strftime("%H:%M"), "check_out_date": check_out.date().isoformat(),
            "check_out_time": check_out.strftime("%H:%M")}


def test_the_api_refuses_an_overlap_and_names_the_clash(api, keys, world):
    first = api(keys.bob).post("/api/v1/bookings/", stay(world.dune, days_ahead=20), format="json")
    assert first.status_code == 201
    second = api(keys.bob).post("/api/v1/bookings/", stay(world.dune, days_ahead=21, guest_name="Li"),
                                format="json")
    assert second.status_code == 400
    assert "Overlaps the confirmed booking of Carla Mendes" in str(second.json())
    assert not Booking.objects.filter(guest_name="Li").exists()


def test_the_form_refuses_an_overlap_and_names_the_clash(client, world):
    client.force_login(world.bob)
    response = client.post(reverse("booking_create", args=["seaside"]),
                           _form(world.dune, world.booking.check_in + timedelta(hours=5), world.booking.check_out))
    assert "Overlaps the confirmed booking of Ana Costa" in response.content.decode()
    assert not Booking.objects.filter(guest_name="Rosa Delgado").exists()


def test_back_to_back_stays_do_not_overlap_and_a_move_into_another_stay_is_refused(world):
    nxt = booking_create(tenant=world.seaside, property=world.dune, guest_name="Next",
                         check_in=world.booking.check_out, check_out=world.booking.check_out + timedelta(days=2))
    with pytest.raises(BookingOverlap) as refused:
        booking_update(booking=nxt, check_in=world.booking.check_out - timedelta(hours=1))
    assert refused.value.clash == world.booking
    nxt.refresh_from_db()
    assert nxt.check_in == world.booking.check_out


def test_a_cancelled_stay_frees_its_dates(world):
    Booking.objects.filter(pk=world.booking.pk).update(status=BookingStatus.CANCELLED)
    booking_create(tenant=world.seaside, property=world.dune, guest_name="Rebooked",
                   check_in=world.booking.check_in, check_out=world.booking.check_out)


def test_the_timeline_draws_overlapping_stays_on_separate_rows_and_hides_none():
    now = datetime(2030, 6, 1, 12, tzinfo=UTC)
    bars = [Bar(now + timedelta(days=1), now + timedelta(days=4), "Ana", "booking"),
            Bar(now + timedelta(days=2), now + timedelta(days=3), "Tom", "booking"),
            Bar(now + timedelta(days=5), now + timedelta(days=6), "Li", "booking")]
    svg = str(timeline_svg(rows=[Row("Stays", bars)], now=now, tz_name="UTC"))
    assert "Stays (2)" in svg  # Tom's bar got a row of its own
    assert all(f"<title>{name}: booking" in svg for name in ("Ana", "Tom", "Li"))
    assert svg.count("<text x=\"6\"") == 2  # two lanes, Li shares Ana's


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_parallel_creations_for_one_slot_make_exactly_one_booking(api, keys, world, on_postgres):
    if not on_postgres:
        pytest.skip("needs concurrent writers (PostgreSQL)")
    data = stay(world.harbor_view, days_ahead=30)
    check_in = datetime.fromisoformat(data["check_in"])
    form = _form(world.harbor_view, check_in, check_in + timedelta(days=3))
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def through_api(n: int) -> None:
        try:
            client = api(keys.bob)
            barrier.wait()
            statuses.append(client.post("/api/v1/bookings/", {**data, "guest_name": f"API {n}"},
                                        format="json").status_code)
        finally:
            connections.close_all()

    def through_form(n: int) -> None:
        try:
            client = Client()
            client.force_login(world.bob)
            barrier.wait()
            statuses.append(client.post(reverse("booking_create", args=["seaside"]),
                                        {**form, "guest_name": f"Form {n}"}).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=through_api if n % 2 else through_form, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(statuses) == 10 and 500 not in statuses
    assert Booking.objects.filter(property=world.harbor_view, status=BookingStatus.CONFIRMED,
                                  check_in__gte=check_in - timedelta(days=1)).count() == 1


@pytest.mark.postgres
def test_postgresql_itself_refuses_an_overlapping_row(world, on_postgres):
    """The exclusion constraint is the backstop under the services' lock."""
    from django.db import IntegrityError, transaction

    if not on_postgres:
        pytest.skip("the exclusion constraint is PostgreSQL's")
    with pytest.raises(IntegrityError, match="booking_no_overlapping_stays"), transaction.atomic():
        Booking.objects.create(tenant=world.seaside, property=world.dune, guest_name="Raw",
                               check_in=world.booking.check_in, check_out=world.booking.check_out)
