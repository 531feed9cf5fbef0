"""iCal booking feeds (Airbnb, Vrbo, Booking.com …): one feed per property, imported every 15 minutes.

Each VEVENT is a stay: UID → ``external_ref`` (source "ical"), DTSTART/DTEND dates → check-in/out at
the property's times in its time zone. New events create bookings, moved events move them, future
bookings whose event vanished are cancelled. A feed that cannot be fetched or parsed changes nothing:
the last good bookings stay, ``Property.ical_last_error`` says why and an Activity row records when it
broke (and when it recovered), so the property page, the API and the daily digest can show it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from locks.activity import activity_record
from portal import services as booking_services
from portal.models import Booking, BookingSource, BookingStatus, Property
from providers.egress import (
    EgressAddressRefused,
    EgressError,
    EgressRedirectRefused,
    EgressSchemeRefused,
    EgressTimeout,
    EgressTooLarge,
    EgressUnreachable,
    egress_limits,
    egress_request,
)

logger = logging.getLogger(__name__)

FETCH_TIMEOUT = (5.0, 20.0)  # connect, read (seconds); EGRESS_DEADLINE_SECONDS bounds the whole fetch
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


# What a user is told when the guarded outbound path (providers/egress.py) refuses or gives up; the most
# specific class first. Our words only: nothing the feed's server sent is ever repeated.
EGRESS_WORDS: tuple[tuple[type[EgressError], str], ...] = (
    (EgressSchemeRefused, "The feed address must be an http(s) URL."),
    (EgressAddressRefused, "The feed address is not a public internet address."),
    (EgressRedirectRefused, "The feed address redirects to another host; enter the final URL."),
    (EgressTimeout, "The feed did not answer in time."),
    (EgressUnreachable, "Could not reach the feed's server."),
)


def _size(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    return f"{limit // 1024} kB" if limit % 1024 == 0 else f"{limit} bytes"


def _egress_words(exc: EgressError) -> str:
    if isinstance(exc, EgressTooLarge):
        return f"The feed is larger than {_size(egress_limits().max_response_bytes)}."
    if isinstance(exc, EgressRedirectRefused) and "too many" in str(exc):
        return "The feed address redirects too many times; enter the final URL."
    return next((words for kind, words in EGRESS_WORDS if isinstance(exc, kind)), "Could not fetch the feed.")


def feed_fetch(*, url: str) -> bytes:
    """The feed's body, through the one guarded outbound path: same-host redirects only, size limit,
    total deadline, the connected address checked on every hop."""
    try:
        response = egress_request("GET", url, headers={"Accept": "text/calendar"}, timeout=FETCH_TIMEOUT)
    except EgressError as exc:
        raise FeedError(_egress_words(exc)) from exc
    if 300 <= response.status_code < 400:
        raise FeedError("The feed address redirects; enter the final URL.")
    if response.status_code != 200:
        raise FeedError(f"The feed answered HTTP {response.status_code}.")
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
    for number, event in enumerate(calendar.walk("VEVENT"), start=1):
        uid = str(event.get("UID", "")).strip()
        summary = str(event.get("SUMMARY", "")).strip()
        if not uid or any(marker in summary.lower() for marker in BLOCK_MARKERS):
            continue
        start = _date_or_datetime(event.get("DTSTART"), number)
        if start is None:
            continue
        end = _event_end(event, start, number)
        if end is None:
            continue
        name, phone = _guest(summary, str(event.get("DESCRIPTION", "")), uid)
        stays.append(FeedStay(uid=uid[:200], check_in=start, check_out=end, guest_name=name, guest_phone=phone))
    return stays


def _date_or_datetime(prop: Any, number: int) -> date | datetime | None:
    """A DTSTART/DTEND value as a DATE or DATE-TIME; anything else (VALUE=TIME, a period, a repeated
    property) fails the feed, in our words (the event is numbered, its text is the feed's)."""
    if prop is None:
        return None
    value = getattr(prop, "dt", None)
    if not isinstance(value, date):  # datetime is a date too
        raise FeedError(f"Event {number} in the feed has a start or end that is not a date.")
    return value


def _event_end(event: Any, start: date | datetime, number: int) -> date | datetime | None:
    """DTEND, or DTSTART + DURATION (RFC 5545 §3.6.1); None when the event gives neither."""
    if event.get("DTEND") is not None:
        return _date_or_datetime(event.get("DTEND"), number)
    duration = getattr(event.get("DURATION"), "dt", None)
    if duration is None:
        return None
    if not isinstance(duration, timedelta):
        raise FeedError(f"Event {number} in the feed has a duration that is not a length of time.")
    return start + duration


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


def _feed_failed(*, prop: Property, error: str, now: datetime) -> FeedResult:
    if prop.ical_last_error != error:  # one Activity per change, not one every 15 minutes
        _record(prop, "feed.failed", f"iCal feed of {prop.name} failed: {error}", now)
    Property.objects.filter(pk=prop.pk).update(ical_last_error=error)
    prop.ical_last_error = error
    return FeedResult(property_id=prop.pk, error=error)


def feed_import(*, prop: Property, now: datetime) -> FeedResult:
    """Fetch, parse and apply one property's feed, recording failures on the property."""
    try:
        stays = feed_parse(body=feed_fetch(url=prop.ical_url))
    except FeedError as exc:
        return _feed_failed(prop=prop, error=str(exc), now=now)
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
        try:
            results.append(feed_import(prop=prop, now=now))
        except Exception:
            # Each feed fails alone: one feed we did not foresee must not stop every tenant's import after
            # it (a VALUE=TIME event once did). Details go to the log; the property gets our words.
            logger.exception("iCal feed of property %s could not be imported", prop.pk)
            results.append(_feed_failed(prop=prop, error="The feed could not be imported.", now=now))
    return results
