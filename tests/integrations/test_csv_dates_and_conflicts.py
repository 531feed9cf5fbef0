"""CSV import: US and day-first dates when the upload says so (same preview), impossible dates refused,
and a row that overlaps a confirmed booking listed as a conflict on the property page, not saved."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.models import Booking, BookingConflict

NY = ZoneInfo("America/New_York")
HEADER = "property,guest_name,guest_phone,guest_email,check_in,check_out,external_ref\n"


def upload(client, text, date_order):
    return client.post(reverse("csv_import", args=["seaside"]), {
        "file": SimpleUploadedFile("b.csv", (HEADER + text).encode(), content_type="text/csv"),
        "date_order": date_order,
    })


@pytest.mark.parametrize("order, row", [
    ("us", "Dune Cottage,Iris Nakamura,,,12/28/2030,01/02/2031 10:30,US-1\n"),
    ("dmy", "Dune Cottage,Iris Nakamura,,,28/12/2030,02/01/2031 10:30,US-1\n"),
])
def test_it_reads_us_and_day_first_dates_when_told(client, world, order, row):
    client.force_login(world.bob)
    html = upload(client, row, order).content.decode()
    assert "1 to create" in html
    client.post(reverse("csv_import_confirm", args=["seaside"]))
    booking = Booking.objects.get(external_ref="US-1")
    assert booking.check_in == datetime(2030, 12, 28, 15, 0, tzinfo=NY)
    assert booking.check_out == datetime(2031, 1, 2, 10, 30, tzinfo=NY)


@pytest.mark.parametrize("order, value", [("us", "02/30/2030"), ("dmy", "30/02/2030"), ("iso", "12/28/2030"),
                                          ("us", "13/01/2030")])
def test_an_impossible_or_unannounced_date_is_rejected_and_nothing_saved(client, world, order, value):
    client.force_login(world.bob)
    html = upload(client, f"Dune Cottage,Iris,,,{value},2031-03-02,D-1\n", order).content.decode()
    assert "1 rejected" in html and f"Bad check-in date “{value}”" in html
    client.post(reverse("csv_import_confirm", args=["seaside"]))
    assert not Booking.objects.filter(source="csv").exists()


def test_an_unknown_date_order_is_refused(client, world):
    client.force_login(world.bob)
    response = upload(client, "Dune Cottage,Iris,,,2030-12-28,2030-12-30,D-1\n", "martian")
    assert "Select a valid choice" in response.content.decode()
    assert not Booking.objects.filter(source="csv").exists()


def test_a_row_that_overlaps_a_confirmed_booking_becomes_a_conflict_not_a_stay(client, world):
    tz = ZoneInfo(world.dune.timezone)
    day = world.booking.check_in.astimezone(tz).date() + timedelta(days=1)  # inside Ana's three nights
    client.force_login(world.bob)
    html = upload(client, f"Dune Cottage,Double Booked,,,{day.isoformat()},{day.isoformat()} 23:00,CSV-X\n",
                  "iso").content.decode()
    assert "1 in conflict" in html and "Overlaps the confirmed booking of Ana Costa" in html
    client.post(reverse("csv_import_confirm", args=["seaside"]))
    assert not Booking.objects.filter(guest_name="Double Booked").exists()
    conflict = BookingConflict.objects.get()
    assert (conflict.source, conflict.clashes_with, conflict.property) == ("csv", world.booking, world.dune)
    page = client.get(reverse("property_detail", args=["seaside", world.dune.pk])).content.decode()
    assert "Double Booked" in page
