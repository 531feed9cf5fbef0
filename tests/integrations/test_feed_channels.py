"""Booking feeds as channels really export them: several feeds per property, blocks and holds that are
not stays, names and references where each channel puts them, dates written as midnight UTC, and stays
that overlap a confirmed booking (a conflict on the property page, never a second stay)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import responses
import time_machine
from django.urls import reverse

from portal.feeds import feed_import
from portal.models import Booking, BookingConflict, BookingFeed, BookingStatus

FIXTURES = Path(__file__).parent / "fixtures"
AIRBNB = "http://127.0.0.1:9/calendar/airbnb.ics"
VRBO = "http://127.0.0.1:9/calendar/vrbo.ics"
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
NY = ZoneInfo("America/New_York")


@pytest.fixture
def dune(world):
    world.dune.refresh_from_db()
    return world.dune


@pytest.fixture
def channels():
    """channels({url: fixture name}) serves those files at those URLs."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, time_machine.travel(NOW, tick=False):
        def serve(files: dict[str, str]) -> None:
            for url, name in files.items():
                mock.upsert(responses.GET, url, body=(FIXTURES / name).read_bytes(), content_type="text/calendar")

        yield serve


def _feed(prop, url, label):
    return BookingFeed.objects.create(tenant=prop.tenant, property=prop, label=label, url=url)


def test_it_never_makes_a_guest_stay_of_abritel_blocks_holds_or_owner_stays(channels, dune):
    channels({VRBO: "abritel_fr.ics"})
    feed = _feed(dune, VRBO, "Abritel")
    result = feed_import(feed=feed, now=NOW)
    [booking] = Booking.objects.filter(property=dune, source="ical")
    assert (booking.guest_name, booking.channel_ref) == ("Mélanie Durand", "HA-4F7K2M")
    assert booking.check_in == datetime(2030, 7, 10, 15, 0, tzinfo=NY)
    assert booking.feed == feed and result.created == [booking.pk]


def test_it_reads_airbnb_midnight_utc_as_dates_and_skips_not_available_blocks(channels, dune):
    channels({AIRBNB: "airbnb_midnight_utc.ics"})
    feed_import(feed=_feed(dune, AIRBNB, "Airbnb"), now=NOW)
    [booking] = Booking.objects.filter(property=dune, source="ical")
    # Not Sep 4, 20:00 in New York (midnight UTC read as a time): the guest leaves on the 5th at 11:00.
    assert (booking.check_in, booking.check_out) == (
        datetime(2030, 9, 1, 15, 0, tzinfo=NY), datetime(2030, 9, 5, 11, 0, tzinfo=NY)
    )
    assert (booking.guest_name, booking.guest_phone, booking.channel_ref) == (
        "Guest HMZZ9Y8X7W", "5531", "HMZZ9Y8X7W"
    )


def test_a_real_local_time_in_a_feed_is_kept():
    from portal.feeds import feed_parse

    body = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x-1\r\nDTSTART;TZID=Europe/Lisbon:20300601T170000\r\n" \
           b"DTEND;TZID=Europe/Lisbon:20300603T100000\r\nSUMMARY:Reserved - Li Wei\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    [stay] = feed_parse(body=body)
    assert stay.check_in == datetime(2030, 6, 1, 17, 0, tzinfo=ZoneInfo("Europe/Lisbon"))


def test_a_property_has_several_feeds_and_a_feed_cancels_only_its_own_bookings(channels, dune):
    channels({AIRBNB: "airbnb_first.ics", VRBO: "abritel_fr.ics"})
    airbnb, vrbo = _feed(dune, AIRBNB, "Airbnb"), _feed(dune, VRBO, "Abritel")
    feed_import(feed=airbnb, now=NOW)
    feed_import(feed=vrbo, now=NOW)
    assert Booking.objects.filter(property=dune, source="ical", status=BookingStatus.CONFIRMED).count() == 3
    channels({AIRBNB: "airbnb_second.ics"})  # drops "bbbb"; the Abritel stay is not Airbnb's to cancel
    feed_import(feed=airbnb, now=NOW)
    assert Booking.objects.get(external_ref="1418fb94e984-bbbb@airbnb.com").status == BookingStatus.CANCELLED
    assert Booking.objects.get(external_ref="abritel-res-4f7k2m@homeaway.com").status == BookingStatus.CONFIRMED


def test_an_overlapping_event_from_another_feed_is_a_conflict_and_creates_nothing(channels, dune, client, world):
    channels({AIRBNB: "airbnb_first.ics", VRBO: "vrbo_overlapping.ics"})
    feed_import(feed=_feed(dune, AIRBNB, "Airbnb"), now=NOW)
    vrbo = _feed(dune, VRBO, "Vrbo")
    for _ in range(2):  # a repeated sync keeps one conflict, not one per sync
        result = feed_import(feed=vrbo, now=NOW)
    assert result.conflicts == ["vrbo-res-7hq2lp@homeaway.com"]
    assert not Booking.objects.filter(external_ref="vrbo-res-7hq2lp@homeaway.com").exists()
    assert Booking.objects.filter(external_ref="vrbo-res-2kd8wn@homeaway.com", guest_name="Priya Raman").exists()
    conflict = BookingConflict.objects.get(resolved_at__isnull=True)
    clash = Booking.objects.get(external_ref="1418fb94e984-aaaa@airbnb.com")
    assert (conflict.guest_name, conflict.feed, conflict.clashes_with) == ("Tom Becker", vrbo, clash)
    client.force_login(world.bob)
    page = client.get(reverse("property_detail", args=["seaside", dune.pk])).content.decode()
    assert "Tom Becker" in page and "Guest HMAAAA1111" in page and "Conflicts" in page


def test_a_conflict_resolves_when_the_clash_is_gone(channels, dune):
    channels({AIRBNB: "airbnb_first.ics", VRBO: "vrbo_overlapping.ics"})
    airbnb, vrbo = _feed(dune, AIRBNB, "Airbnb"), _feed(dune, VRBO, "Vrbo")
    feed_import(feed=airbnb, now=NOW)
    feed_import(feed=vrbo, now=NOW)
    channels({AIRBNB: "airbnb_second.ics"})  # Airbnb moved "aaaa" to Jun 11-16: still a clash
    feed_import(feed=airbnb, now=NOW)
    Booking.objects.filter(external_ref="1418fb94e984-aaaa@airbnb.com").update(status=BookingStatus.CANCELLED)
    result = feed_import(feed=vrbo, now=NOW)
    assert result.created and not result.conflicts
    assert not BookingConflict.objects.filter(resolved_at__isnull=True).exists()
