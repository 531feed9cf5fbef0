from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
import time_machine
from django.core.management import call_command

from locks.models import Activity
from portal.feeds import feed_import
from portal.models import Booking, BookingFeed, BookingStatus

FIXTURES = Path(__file__).parent / "fixtures"
FEED_URL = "http://127.0.0.1:9/calendar/dune.ics"
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
NY = ZoneInfo("America/New_York")


def add_feed(prop, url=FEED_URL, label="Airbnb"):
    return BookingFeed.objects.create(tenant=prop.tenant, property=prop, label=label, url=url)


@pytest.fixture
def dune(world):
    world.dune.refresh_from_db()  # the factory left check-in/out times as strings
    return world.dune


@pytest.fixture
def feed(dune):
    return add_feed(dune)


def ical_bookings(prop):
    return {b.external_ref: b for b in Booking.objects.filter(property=prop, source="ical")}


@pytest.fixture
def serve():
    """serve(body, status) makes the feed URL answer with body (or raise it, for an exception)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, time_machine.travel(NOW, tick=False):
        mock.add(responses.GET, FEED_URL, body=b"")

        def answer(body: bytes | Exception, status: int = 200) -> None:
            mock.replace(responses.GET, FEED_URL, body=body, status=status, content_type="text/calendar")

        yield answer


def test_it_imports_new_stays_at_the_property_times(serve, dune, feed):
    serve((FIXTURES / "airbnb_first.ics").read_bytes())
    result = feed_import(feed=feed, now=NOW)
    bookings = ical_bookings(dune)
    assert set(bookings) == {"1418fb94e984-aaaa@airbnb.com", "1418fb94e984-bbbb@airbnb.com"}
    first = bookings["1418fb94e984-aaaa@airbnb.com"]
    assert first.check_in == datetime(2030, 6, 10, 15, 0, tzinfo=NY)
    assert first.check_out == datetime(2030, 6, 15, 11, 0, tzinfo=NY)
    assert (first.guest_name, first.guest_phone, first.channel_ref) == ("Guest HMAAAA1111", "4321", "HMAAAA1111")
    assert first.feed == feed
    assert len(result.created) == 2
    feed.refresh_from_db()
    assert (feed.last_synced_at, feed.last_error) == (NOW, "")


def test_it_moves_cancels_and_adds_on_the_next_import_and_repeats_without_duplicates(serve, dune, feed):
    serve((FIXTURES / "airbnb_first.ics").read_bytes())
    feed_import(feed=feed, now=NOW)
    serve((FIXTURES / "airbnb_second.ics").read_bytes())
    for _ in range(2):
        feed_import(feed=feed, now=NOW)
    bookings = ical_bookings(dune)
    assert len(bookings) == 3
    moved = bookings["1418fb94e984-aaaa@airbnb.com"]
    assert (moved.status, moved.check_in) == (BookingStatus.CONFIRMED, datetime(2030, 6, 11, 15, 0, tzinfo=NY))
    assert bookings["1418fb94e984-bbbb@airbnb.com"].status == BookingStatus.CANCELLED
    assert bookings["vrbo-cccc"].guest_name == "Dana Whitfield"
    assert Booking.objects.filter(external_ref="1418fb94e984-past@airbnb.com").count() == 0


@pytest.mark.parametrize(
    "body, status",
    [(b"oops", 500), (requests.Timeout("slow"), 200), (b"<html>not a calendar</html>", 200)],
    ids=["http-500", "timeout", "unparsable"],
)
def test_a_broken_feed_keeps_the_last_good_bookings_and_records_the_issue(serve, dune, feed, body, status):
    serve((FIXTURES / "airbnb_first.ics").read_bytes())
    feed_import(feed=feed, now=NOW)
    before = {ref: (b.status, b.check_in, b.check_out) for ref, b in ical_bookings(dune).items()}
    serve(body, status)
    for _ in range(2):
        result = feed_import(feed=feed, now=NOW)
    assert result.error
    assert {ref: (b.status, b.check_in, b.check_out) for ref, b in ical_bookings(dune).items()} == before
    feed.refresh_from_db()
    assert feed.last_error == result.error
    assert Activity.objects.filter(tenant=dune.tenant, verb="feed.failed").count() == 1


def test_it_clears_the_error_when_the_feed_recovers(serve, dune, feed):
    serve(b"down", 503)
    feed_import(feed=feed, now=NOW)
    serve((FIXTURES / "airbnb_first.ics").read_bytes())
    feed_import(feed=feed, now=NOW)
    feed.refresh_from_db()
    assert feed.last_error == ""
    assert Activity.objects.filter(verb="feed.recovered").count() == 1


def test_the_command_imports_every_feed(serve, dune, feed, capsys):
    serve((FIXTURES / "airbnb_first.ics").read_bytes())
    call_command("import_feeds")
    assert len(ical_bookings(dune)) == 2
    assert "Dune Cottage (Airbnb): 2 new" in capsys.readouterr().out


def test_the_task_imports_every_feed(serve, dune, feed):
    from portal.tasks import import_feeds

    serve((FIXTURES / "airbnb_first.ics").read_bytes())
    import_feeds()
    assert len(ical_bookings(dune)) == 2


def test_it_reads_timed_events_and_skips_blocked_dates():
    from portal.feeds import feed_parse

    body = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:bdc-1\r
DTSTART:20300610T190000Z\r
DTEND:20300612T150000Z\r
SUMMARY:Reserved - Li Wei\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:bdc-2\r
DTSTART;VALUE=DATE:20300601\r
DTEND;VALUE=DATE:20300603\r
SUMMARY:CLOSED - Not available\r
END:VEVENT\r
END:VCALENDAR\r
"""
    [stay] = feed_parse(body=body)
    assert (stay.uid, stay.guest_name, stay.guest_phone) == ("bdc-1", "Li Wei", "")
    assert stay.check_in == datetime(2030, 6, 10, 19, 0, tzinfo=ZoneInfo("UTC"))


def test_the_same_uid_in_two_properties_feeds_is_rejected_not_a_crash(serve, dune, feed, world):
    world.harbor_view.refresh_from_db()
    other = add_feed(world.harbor_view)
    serve((FIXTURES / "airbnb_first.ics").read_bytes())
    feed_import(feed=feed, now=NOW)
    result = feed_import(feed=other, now=NOW)
    assert len(result.rejected) == 2
    assert result.rejected[0].startswith("1418fb94e984-aaaa@airbnb.com: ")
    assert Booking.objects.filter(source="ical").count() == 2


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/calendar/dune.ics", "http://10.0.0.8/x.ics", "http://169.254.169.254/latest", "file:///etc/passwd"],
)
def test_without_debug_it_refuses_feeds_on_private_addresses(settings, url):
    from portal.feeds import FeedError, feed_fetch

    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(FeedError):
        feed_fetch(url=url)


def test_a_redirecting_feed_is_an_error(serve, dune, feed):
    serve(b"", 302)
    result = feed_import(feed=feed, now=NOW)
    assert result.error == "The feed address redirects; enter the final URL."


TIME_ONLY_AND_DURATION = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:duration-1\r
DTSTART;VALUE=DATE:20300620\r
DURATION:P3D\r
SUMMARY:Reserved - Dana Whitfield\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:time-only-1\r
DTSTART;VALUE=TIME:150000\r
DTEND;VALUE=DATE:20300625\r
SUMMARY:Reserved - Li Wei\r
END:VEVENT\r
END:VCALENDAR\r
"""
DURATION_ONLY = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:duration-1\r
DTSTART;VALUE=DATE:20300620\r
DURATION:P3D\r
SUMMARY:Reserved - Dana Whitfield\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:duration-2\r
DTSTART:20300701T190000Z\r
DURATION:PT40H\r
SUMMARY:Reserved - Li Wei\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_it_ends_a_stay_given_by_duration_at_start_plus_duration(serve, dune, feed):
    serve(DURATION_ONLY)
    result = feed_import(feed=feed, now=NOW)
    assert result.error == ""
    bookings = ical_bookings(dune)
    assert bookings["duration-1"].check_in == datetime(2030, 6, 20, 15, 0, tzinfo=NY)
    assert bookings["duration-1"].check_out == datetime(2030, 6, 23, 11, 0, tzinfo=NY)
    assert bookings["duration-2"].check_out == datetime(2030, 7, 3, 11, 0, tzinfo=ZoneInfo("UTC"))


def test_one_bad_feed_fails_alone_and_the_other_tenants_feed_still_imports(world, dune, feed):
    from portal.feeds import feeds_import_all

    other_url = "http://127.0.0.1:9/calendar/old-town.ics"
    other = add_feed(world.harbor_property, other_url)
    assert feed.pk < other.pk  # the bad feed is imported first
    with responses.RequestsMock() as mock, time_machine.travel(NOW, tick=False):
        mock.get(FEED_URL, body=TIME_ONLY_AND_DURATION, content_type="text/calendar")
        mock.get(other_url, body=(FIXTURES / "airbnb_first.ics").read_bytes(), content_type="text/calendar")
        results = feeds_import_all(now=NOW)
    feed.refresh_from_db()
    assert feed.last_error == "Event 2 in the feed has a start or end that is not a date."
    assert ical_bookings(dune) == {}  # a feed with a bad event changes nothing, as a broken feed does
    assert len(ical_bookings(world.harbor_property)) == 2
    other.refresh_from_db()
    assert other.last_error == ""
    assert [bool(r.error) for r in results] == [True, False]
