"""iCal booking feeds (Airbnb, Vrbo, Booking.com …): one feed per property, imported every 15 minutes.

Each VEVENT is a stay: UID → ``external_ref`` (source "ical"), DTSTART/DTEND dates → check-in/out at
the property's times in its time zone. New events create bookings, moved events move them, future
bookings whose event vanished are cancelled. A feed that cannot be fetched or parsed changes nothing:
the last good bookings stay, ``Property.ical_last_error`` says why and an Activity row records when it
broke (and when it recovered), so the property page, the API and the daily digest can show it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from locks.activity import activity_record
from portal import services as booking_services
from portal.models import Booking, BookingSource, BookingStatus, Property

FETCH_TIMEOUT = (5, 20)  # connect, read (seconds)
MAX_FEED_BYTES = 5 * 1024 * 1024
# Channel placeholders that block dates without a guest (owner stays, "not available").
BLOCK_MARKERS = ("not available", "blocked", "closed")
GENERIC_SUMMARIES = {"reserved", "reservation", "booked", "airbnb", ""}
PHONE_LAST4 = re.compile(r"Phone Number \(Last 4 Digits\):\s*(\d{4})", re.IGNORECASE)
RESERVATION_CODE = re.compile(r"/reservations/details/([A-Z0-9]+)", re.IGNORECASE)


class FeedError(Exception):
    """The feed could not be fetched or read; nothing was imported."""


@dataclass(frozen=True)
class FeedStay:
    uid: str
    check_in: date | datetime
    check_out: date | datetime
    guest_name: str
    guest_phone: str


@dataclass
class FeedResult:
    property_id: int
    created: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    unchanged: int = 0
    rejected: list[str] = field(default_factory=list)  # "UID: why"
    error: str = ""


def _check_public(url: str) -> None:
    """Refuse feed URLs that point into our own network: a tenant admin types the URL, the server
    fetches it. (Development and tests fetch from 127.0.0.1, so DEBUG allows private addresses.)"""
    if getattr(settings, "ICAL_ALLOW_PRIVATE_ADDRESSES", settings.DEBUG):
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FeedError("The feed address must be an http(s) URL.")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except (OSError, UnicodeError) as exc:
        raise FeedError("The feed's host name does not resolve.") from exc
    if any(not ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses):
        raise FeedError("The feed address is not a public internet address.")


def feed_fetch(*, url: str) -> bytes:
    _check_public(url)
    try:
        # No redirects: a public URL must not bounce the fetch to a private address.
        response = requests.get(
            url, timeout=FETCH_TIMEOUT, headers={"Accept": "text/calendar"}, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise FeedError(f"Could not fetch the feed: {exc.__class__.__name__}") from exc
    if 300 <= response.status_code < 400:
        raise FeedError("The feed address redirects; enter the final URL.")
    if response.status_code != 200:
        raise FeedError(f"The feed answered HTTP {response.status_code}.")
    if len(response.content) > MAX_FEED_BYTES:
        raise FeedError("The feed is larger than 5 MB.")
    return response.content


def _guest(summary: str, description: str, uid: str) -> tuple[str, str]:
    match = PHONE_LAST4.search(description)
    phone = match.group(1) if match else ""
    name = re.sub(r"^\s*(reserved|booked)\s*[-:–]\s*", "", summary, flags=re.IGNORECASE).strip()
    if name.lower() in GENERIC_SUMMARIES:
        code = RESERVATION_CODE.search(description)
        name = f"Guest {code.group(1) if code else uid[:8]}"
    return name[:200], phone


def feed_parse(*, body: bytes) -> list[FeedStay]:
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except ValueError as exc:
        # The parser's message quotes the body; the error is shown to users, so say less.
        raise FeedError("The feed is not a valid iCalendar file.") from exc
    if calendar.name != "VCALENDAR":
        raise FeedError("The feed is not a VCALENDAR.")
    stays = []
    for event in calendar.walk("VEVENT"):
        uid = str(event.get("UID", "")).strip()
        summary = str(event.get("SUMMARY", "")).strip()
        if not uid or any(marker in summary.lower() for marker in BLOCK_MARKERS):
            continue
        start, end = event.get("DTSTART"), event.get("DTEND")
        if start is None or end is None:
            continue
        name, phone = _guest(summary, str(event.get("DESCRIPTION", "")), uid)
        stays.append(FeedStay(uid=uid[:200], check_in=start.dt, check_out=end.dt, guest_name=name, guest_phone=phone))
    return stays


def _at_property_time(value: date | datetime, prop: Property, *, arriving: bool) -> datetime:
    zone = ZoneInfo(prop.timezone)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, prop.checkin_time if arriving else prop.checkout_time, tzinfo=zone)


def feed_apply(*, prop: Property, stays: list[FeedStay], now: datetime) -> FeedResult:
    """Bring the property's iCal bookings in line with a freshly parsed feed. Safe to repeat."""
    result = FeedResult(property_id=prop.pk)
    existing = {
        b.external_ref: b
        for b in Booking.objects.for_tenant(prop.tenant).filter(source=BookingSource.ICAL, property=prop)
    }
    seen = set()
    for stay in stays:
        seen.add(stay.uid)
        check_in = _at_property_time(stay.check_in, prop, arriving=True)
        check_out = _at_property_time(stay.check_out, prop, arriving=False)
        booking = existing.get(stay.uid)
        try:
            if booking is None:
                if check_out <= now:
                    continue  # history the feed still lists; nothing to program
                booking = booking_services.booking_create(
                    tenant=prop.tenant, property=prop, guest_name=stay.guest_name, guest_phone=stay.guest_phone,
                    check_in=check_in, check_out=check_out, source=BookingSource.ICAL, external_ref=stay.uid,
                    now=now,
                )
                result.created.append(booking.pk)
            elif booking.status == BookingStatus.CONFIRMED and (booking.check_in, booking.check_out) != (
                check_in, check_out
            ):
                booking_services.booking_update(booking=booking, check_in=check_in, check_out=check_out, now=now)
                result.moved.append(booking.pk)
            else:
                result.unchanged += 1
        except ValidationError as exc:
            result.rejected.append(f"{stay.uid}: {'; '.join(exc.messages)}")
        except IntegrityError:
            # The same UID was imported from another property's feed (one listing, two feeds).
            result.rejected.append(f"{stay.uid}: already imported for another property")
    for ref, booking in existing.items():
        if ref not in seen and booking.status == BookingStatus.CONFIRMED and booking.check_out > now:
            booking_services.booking_cancel(booking=booking, now=now)
            result.cancelled.append(booking.pk)
    return result


def _record(prop: Property, verb: str, message: str, now: datetime, **data: object) -> None:
    activity_record(tenant_id=prop.tenant_id, verb=verb, message=message, now=now,
                    data={"property_id": prop.pk, **data})


def feed_import(*, prop: Property, now: datetime) -> FeedResult:
    """Fetch, parse and apply one property's feed, recording failures on the property."""
    try:
        stays = feed_parse(body=feed_fetch(url=prop.ical_url))
    except FeedError as exc:
        error = str(exc)
        if prop.ical_last_error != error:  # one Activity per change, not one every 15 minutes
            _record(prop, "feed.failed", f"iCal feed of {prop.name} failed: {error}", now)
        Property.objects.filter(pk=prop.pk).update(ical_last_error=error)
        prop.ical_last_error = error
        return FeedResult(property_id=prop.pk, error=error)
    with transaction.atomic():
        result = feed_apply(prop=prop, stays=stays, now=now)
        if prop.ical_last_error:
            _record(prop, "feed.recovered", f"iCal feed of {prop.name} works again", now)
        Property.objects.filter(pk=prop.pk).update(ical_last_error="", ical_last_fetched_at=now)
        prop.ical_last_error, prop.ical_last_fetched_at = "", now
        if result.created or result.moved or result.cancelled:
            _record(
                prop, "feed.imported",
                f"iCal feed of {prop.name}: {len(result.created)} new, {len(result.moved)} moved, "
                f"{len(result.cancelled)} cancelled",
                now, created=result.created, moved=result.moved, cancelled=result.cancelled,
            )
    return result


def feeds_import_all(*, now: datetime) -> list[FeedResult]:
    results = []
    for prop in Property.objects.exclude(ical_url="").select_related("tenant").order_by("pk"):
        results.append(feed_import(prop=prop, now=now))
    return results
