"""Acceptance: every outbound request (vendor APIs, iCal feeds) goes through one guarded path (DESIGN §9).

"Test connection" and an iCal feed are pointed at a real HTTP server on 127.0.0.1 that misbehaves: it
redirects to another host, hides behind a name that resolves to 127.0.0.1, sends a 200 MB body, or drips
its body one byte at a time. Each is refused or cut off within its limits, and no text the server sent
reaches a page, a flash message or the account's stored status.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from portal.feeds import feed_import
from portal.models import Booking, BookingFeed, Property
from providers.models import AccountStatus, ProviderAccount
from tests import factories
from tests.conftest import verified_client_for
from tests.security.loopback_stub import MARKER, LoopbackStub, answer, drip, huge, redirect

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
REBIND_HOST = "feeds.example.com"
SMALL_LIMIT = 256 * 1024
CALENDAR = f"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:stub-1\r
DTSTART;VALUE=DATE:20300610\r
DTEND;VALUE=DATE:20300612\r
SUMMARY:Reserved - {MARKER}\r
END:VEVENT\r
END:VCALENDAR\r
"""


@pytest.fixture
def stub() -> Iterator[LoopbackStub]:
    with LoopbackStub() as server:
        yield server


@pytest.fixture
def loopback_allowed(settings):
    """The stub lives on 127.0.0.1, which production refuses; these tests say so explicitly."""
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = True
    return settings


@pytest.fixture
def as_alice(client, world):
    return verified_client_for(client, world.alice)  # an admin with a second factor (portal/two_factor.py)


@pytest.fixture
def rebinding_dns(monkeypatch):
    """`feeds.example.com` as a DNS-rebinding name: a check that looks the name up on its own (without a
    socket type) is told a public address, the connection's own look-up gets 127.0.0.1. Nothing ever
    connects to the public address: only a guard that resolves twice would see it."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host in (REBIND_HOST, f"vendor.{REBIND_HOST}"):
            address = "93.184.216.34" if type == 0 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def seam_at(world, base_url: str) -> ProviderAccount:
    # Stored directly: an account saved before the form checked its base URL must be refused when used.
    return factories.ProviderAccountFactory(
        tenant=world.seaside, vendor="seam", name="Seam via stub",
        credentials={"api_key": "seam_stub_key_1234", "base_url": base_url},
    )


def press_test_connection(client, account: ProviderAccount) -> tuple[str, list[str]]:
    """Press "Test connection"; return the page shown after it and the flash messages."""
    response = client.post(reverse("providers:account_test", args=["seaside", account.uuid]))
    assert response.status_code == 302
    flashes = [str(m) for m in get_messages(response.wsgi_request)]
    page = client.get(reverse("providers:account_detail", args=["seaside", account.uuid])).content.decode()
    account.refresh_from_db()
    return page, flashes


def assert_no_stub_text(page: str, flashes: list[str], account: ProviderAccount) -> None:
    assert MARKER not in page
    assert all(MARKER not in flash for flash in flashes), flashes
    assert MARKER not in account.status_detail


# --- the guarded path itself


def test_it_refuses_to_connect_to_loopback_even_under_debug(stub, settings):
    from providers.egress import EgressRefused, egress_request

    settings.DEBUG = True
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = False
    stub.routes["/x"] = answer(200, MARKER)
    with pytest.raises(EgressRefused):
        egress_request("GET", stub.url("/x"))
    assert stub.hits == []


def test_it_checks_the_address_it_connected_to_not_the_name(stub, settings, rebinding_dns):
    from providers.egress import EgressRefused, egress_request

    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = False
    stub.routes["/x"] = answer(200, MARKER)
    with pytest.raises(EgressRefused):
        egress_request("GET", stub.url("/x", host=REBIND_HOST))
    assert stub.hits == []


# --- Test connection


def test_test_connection_does_not_follow_a_redirect_to_another_host(as_alice, world, stub, loopback_allowed):
    stub.routes["/devices/list"] = redirect(stub.url("/elsewhere", host="localhost"))
    stub.routes["/elsewhere"] = answer(401, f'{{"error": {{"type": "x", "message": "{MARKER}"}}}}')
    account = seam_at(world, stub.url())
    page, flashes = press_test_connection(as_alice, account)
    assert stub.hits == ["/devices/list"]
    assert account.status == AccountStatus.ERROR
    assert any("redirect" in flash for flash in flashes), flashes
    assert_no_stub_text(page, flashes, account)


def test_test_connection_refuses_a_name_that_resolves_to_loopback(as_alice, world, stub, settings, rebinding_dns):
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = False
    stub.routes["/devices/list"] = answer(401, f'{{"error": {{"type": "x", "message": "{MARKER}"}}}}')
    account = seam_at(world, stub.url(host=f"vendor.{REBIND_HOST}"))
    page, flashes = press_test_connection(as_alice, account)
    assert stub.hits == []
    assert account.status == AccountStatus.ERROR
    assert_no_stub_text(page, flashes, account)


def test_test_connection_cuts_a_200_mb_answer_off_at_the_limit(as_alice, world, stub, loopback_allowed):
    loopback_allowed.EGRESS_MAX_RESPONSE_BYTES = SMALL_LIMIT
    stub.routes["/devices/list"] = huge()
    account = seam_at(world, stub.url())
    page, flashes = press_test_connection(as_alice, account)
    assert stub.bytes_written < 32 * 1024 * 1024, "the whole body was read before the limit applied"
    assert any("larger than" in flash for flash in flashes), flashes
    assert_no_stub_text(page, flashes, account)


def test_test_connection_stops_a_slow_drip_at_the_total_deadline(as_alice, world, stub, loopback_allowed):
    loopback_allowed.EGRESS_DEADLINE_SECONDS = 1.0
    stub.routes["/devices/list"] = drip()
    account = seam_at(world, stub.url())
    started = time.monotonic()
    page, flashes = press_test_connection(as_alice, account)
    assert time.monotonic() - started < 4
    assert any("in time" in flash for flash in flashes), flashes
    assert_no_stub_text(page, flashes, account)


def test_test_connection_shows_our_words_for_a_refusal_never_the_vendors(as_alice, world, stub, loopback_allowed):
    stub.routes["/devices/list"] = answer(401, f'{{"error": {{"type": "unauthorized", "message": "{MARKER}"}}}}')
    account = seam_at(world, stub.url())
    page, flashes = press_test_connection(as_alice, account)
    assert account.status == AccountStatus.AUTH_FAILED
    assert any("refused the credentials (HTTP 401)" in flash for flash in flashes), flashes
    assert_no_stub_text(page, flashes, account)


# --- iCal feeds


def import_feed(prop: Property, url: str, client) -> tuple[str, str]:
    feed = BookingFeed.objects.create(tenant=prop.tenant, property=prop, label="Airbnb", url=url)
    feed_import(feed=feed, now=NOW)
    feed.refresh_from_db()
    page = client.get(reverse("property_detail", args=["seaside", prop.pk])).content.decode()
    return feed.last_error, page


def test_a_feed_follows_a_same_host_redirect_but_not_one_to_another_host(as_alice, world, stub, loopback_allowed):
    stub.routes["/moved.ics"] = redirect("/calendar.ics", status=301)
    stub.routes["/calendar.ics"] = answer(200, CALENDAR, "text/calendar")
    error, _ = import_feed(world.dune, stub.url("/moved.ics"), as_alice)
    assert error == ""
    assert Booking.objects.filter(property=world.dune, external_ref="stub-1").exists()

    stub.hits.clear()
    stub.routes["/away.ics"] = redirect(stub.url("/calendar.ics", host="localhost"))
    error, page = import_feed(world.harbor_view, stub.url("/away.ics"), as_alice)
    assert error == "The feed address redirects to another host; enter the final URL."
    assert stub.hits == ["/away.ics"]
    assert MARKER not in page


def test_a_feed_on_a_name_that_rebinds_to_loopback_is_refused(as_alice, world, stub, settings, rebinding_dns):
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = False
    stub.routes["/calendar.ics"] = answer(200, CALENDAR, "text/calendar")
    error, page = import_feed(world.dune, stub.url("/calendar.ics", host=REBIND_HOST), as_alice)
    assert stub.hits == []
    assert error == "The feed address is not a public internet address."
    assert not Booking.objects.filter(external_ref="stub-1").exists()
    assert MARKER not in page


def test_a_200_mb_feed_is_cut_off_at_the_limit(as_alice, world, stub, loopback_allowed):
    loopback_allowed.EGRESS_MAX_RESPONSE_BYTES = SMALL_LIMIT
    stub.routes["/calendar.ics"] = huge(content_type="text/calendar")
    error, page = import_feed(world.dune, stub.url("/calendar.ics"), as_alice)
    assert stub.bytes_written < 32 * 1024 * 1024, "the whole body was read before the limit applied"
    assert error == "The feed is larger than 256 kB."
    assert MARKER not in page


def test_a_slow_drip_feed_stops_at_the_total_deadline(as_alice, world, stub, loopback_allowed):
    loopback_allowed.EGRESS_DEADLINE_SECONDS = 1.0
    stub.routes["/calendar.ics"] = drip(content_type="text/calendar")
    started = time.monotonic()
    error, page = import_feed(world.dune, stub.url("/calendar.ics"), as_alice)
    assert time.monotonic() - started < 4
    assert error == "The feed did not answer in time."
    assert MARKER not in page
