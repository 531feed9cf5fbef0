"""A new operator puts a real portfolio in, in a real Chromium at phone size: alice creates a property with
her own check-in time and an iCal feed (served from a loopback stub), adds and imports simulator devices,
assigns two locks, and the feed's booking gets codes on both. Every new page is photographed."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from locks.models import AccessCode, Lock
from portal.models import Booking, BookingFeed, Property
from tests.security.loopback_stub import LoopbackStub, answer

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}
DENVER = ZoneInfo("America/Denver")


def _calendar(arrival: str, departure: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nPRODID:-//Airbnb Inc//Hosting Calendar 1.0//EN\r\nVERSION:2.0\r\n"
        f"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:{arrival}\r\nDTEND;VALUE=DATE:{departure}\r\n"
        "UID:pine-1@airbnb.com\r\nSUMMARY:Reserved\r\nDESCRIPTION:Reservation URL: "
        "https://www.airbnb.com/hosting/reservations/details/HMPINE0001\\nPhone Number (Last 4 Digits): 2468\r\n"
        "END:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20300101\r\nDTEND;VALUE=DATE:20300105\r\n"
        "UID:pine-block@airbnb.com\r\nSUMMARY:Airbnb (Not available)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_alice_puts_a_property_with_a_feed_and_two_locks_in(page, live_server, world, login_with_second_factor,
                                                            screenshot, settings):
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = True  # the feed is a loopback stub
    page.set_viewport_size(PHONE)
    arrival = timezone.now().astimezone(DENVER).date() + timedelta(days=3)
    with LoopbackStub() as stub:
        stub.routes["/pine.ics"] = answer(
            200, _calendar(arrival.strftime("%Y%m%d"), (arrival + timedelta(days=4)).strftime("%Y%m%d")),
            "text/calendar",
        )
        login_with_second_factor(page, "alice")
        base = f"{live_server.url}/t/seaside"

        page.goto(f"{base}/properties/")
        page.click("text=New property")
        page.fill("#id_name", "Pine Cabin")
        page.fill("#id_address", "4 Forest Road, Estes Park, CO")
        page.fill("#id_timezone", "America/Denver")
        page.fill("#id_checkin_time", "16:30")
        page.fill("#id_checkout_time", "10:00")
        screenshot(page, "phone-property-new")
        page.click("text=Create property")
        expect(page.locator("h1")).to_have_text("Pine Cabin")
        prop = Property.objects.get(name="Pine Cabin")

        page.click("text=Add a booking feed")
        page.fill("#id_label", "Airbnb")
        page.fill("#id_url", stub.url("/pine.ics"))
        screenshot(page, "phone-feed-new")
        page.click("text=Add feed")
        expect(page.locator("#feeds")).to_contain_text("Airbnb")

        page.goto(f"{live_server.url}/t/seaside/providers/{world.account.uuid}/")
        for profile, name in (("nuki", "Pine front door"), ("seam", "Pine back door")):
            page.select_option("#id_profile", profile)
            page.fill("#id_name", name)
            page.click("text=Add virtual lock")
            expect(page.locator("main")).to_contain_text(f"Virtual lock “{name}” added")
        screenshot(page, "phone-account-virtual-locks")
        page.click("button:has-text('Import devices')")
        expect(page.locator("main")).to_contain_text("new lock(s)")

        page.goto(f"{base}/locks/unassigned/")
        screenshot(page, "phone-locks-unassigned")
        for name in ("Pine front door", "Pine back door"):
            lock = Lock.objects.get(name=name)
            form = page.locator(f"#unassigned-{lock.pk}")
            form.locator("select").select_option(str(prop.pk))
            form.locator("button:has-text('Assign')").click()
            expect(page.locator("main")).to_contain_text(f"{name} is now at Pine Cabin")
            page.goto(f"{base}/locks/unassigned/")
        lock = Lock.objects.get(name="Pine back door")
        page.goto(f"{base}/locks/{lock.pk}/place/")
        screenshot(page, "phone-lock-place")
        page.goto(f"{base}/locks/{lock.pk}/stop-managing/")
        screenshot(page, "phone-lock-release")

        page.goto(f"{base}/properties/{prop.pk}/")
        page.click("#feeds button:has-text('Sync now')")
        expect(page.locator("main")).to_contain_text("synced: 1 new")
        expect(page.locator("main")).to_contain_text("Guest HMPINE0001")
        screenshot(page, "phone-property-with-feed-and-locks")
        page.goto(f"{base}/properties/{prop.pk}/edit/")
        screenshot(page, "phone-property-edit")
        page.goto(f"{base}/properties/{prop.pk}/archive/")
        screenshot(page, "phone-property-archive")

    booking = Booking.objects.get(property=prop)
    assert booking.feed == BookingFeed.objects.get(property=prop)
    assert booking.check_in == datetime.combine(arrival, time(16, 30), tzinfo=DENVER)
    assert booking.check_out == datetime.combine(arrival + timedelta(days=4), time(10), tzinfo=DENVER)
    assert {code.lock.name for code in AccessCode.objects.filter(booking=booking)} == {
        "Pine front door", "Pine back door"
    }
