"""iCal booking feeds (Airbnb, Vrbo/Abritel, Booking.com …): any number per property (BookingFeed), each
imported every 15 minutes and on "Sync now".

Each VEVENT that is a guest's stay becomes a booking: UID → ``external_ref`` (source "ical", the feed
recorded). Channels export in their own languages and shapes, so what an event *is* comes from tables, not
guesses: blocks ("Not available", "Airbnb (Not available)", "Indisponible", "Blocked"), owner stays and
tentative holds ("Provisoire", STATUS:TENTATIVE) never become confirmed stays with codes. The guest's name
and the reservation reference are read from where each channel puts them (Vrbo's "Guest Name:" line, the
summary after "Reserved - " / "Réservée - ", Airbnb's reservation URL in DESCRIPTION).

A stay's days come from the event and its hours from the property's check-in/check-out times, unless the
event carries a real local time: a date written as midnight UTC (``DTEND:20250105T000000Z``) or as a
floating midnight is a date. New events create bookings, moved events move them, future bookings whose
event vanished from *their* feed are cancelled. An event that overlaps a confirmed booking is not imported:
it becomes a conflict on the property page (portal/conflicts.py). A feed that cannot be fetched or parsed
changes nothing: the last good bookings stay, ``BookingFeed.last_error`` says why and an Activity row
records when it broke (and when it recovered).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from locks.activity import activity_record
from portal import services as booking_services
from portal.conflicts import conflict_record, conflicts_resolve
from portal.models import Booking, BookingFeed, BookingSource, BookingStatus, Property
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
SYNC_EVERY = timedelta(minutes=15)  # the schedule of portal.tasks.import_feeds

# SUMMARY words of events that hold dates without a guest: channel blocks and owner stays, in the languages
# channels export in. Matched as words, case-insensitively.
NOT_A_STAY = re.compile(
    r"\b(not available|unavailable|blocked|closed|indisponible|bloqu[ée]e?|no disponible|nicht verfügbar|"
    r"non disponibile|owner|propriétaire|proprietario|eigentümer|maintenance)\b",
    re.IGNORECASE,
)
# Holds that may still fall through: never a confirmed stay.
TENTATIVE = re.compile(
    r"\b(tentative|provisoire|provisional|on hold|hold|pending|inquiry|enquiry|demande|option|provisorisch)\b",
    re.IGNORECASE,
)
STATUS_NOT_A_STAY = {"TENTATIVE", "CANCELLED"}
# "Reserved - Jane", "Réservée - Melanie", "Booked: Li": the words before the guest's name.
RESERVED_PREFIX = re.compile(
    r"^\s*(reserved|booked|reservation|réservée?|réservation|reservado|reservada|reserviert|gebucht|prenotato)"
    r"\s*(?:[-:–—]\s*|$)",
    re.IGNORECASE,
)
# Where channels write the guest's name in DESCRIPTION (Vrbo/Abritel: "Guest Name: …").
GUEST_NAME_LINE = re.compile(r"^\s*(?:guest name|nom du voyageur|nom du client|gastname)\s*:\s*(.+?)\s*$",
                             re.IGNORECASE | re.MULTILINE)
# Where channels write the reservation reference: Airbnb's reservation URL, Vrbo's "Reservation ID:".
REFERENCE_PATTERNS = (
    re.compile(r"/reservations/details/([A-Z0-9]+)", re.IGNORECASE),
    re.compile(r"^\s*(?:reservation id|réservation|numéro de réservation|booking id)\s*:\s*([A-Z0-9-]+)",
               re.IGNORECASE | re.MULTILINE),
)
PHONE_LAST4 = re.compile(r"Phone Number \(Last 4 Digits\):\s*(\d{4})", re.IGNORECASE)


class FeedError(Exception):
    """The feed could not be fetched or read; nothing was imported."""


@dataclass(frozen=True)
class FeedStay:
    uid: str
    check_in: date | datetime
    check_out: date | datetime
    guest_name: str
    guest_phone: str
    channel_ref: str = ""


@dataclass
class FeedResult:
    feed_id: int
    property_id: int
    created: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # UIDs that overlap a confirmed booking
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


def _is_a_stay(summary: str, status: str) -> bool:
    if status.upper() in STATUS_NOT_A_STAY:
        return False
    bare = RESERVED_PREFIX.sub("", summary)
    return not (NOT_A_STAY.search(bare) or TENTATIVE.search(bare))


def _reference(description: str) -> str:
    for pattern in REFERENCE_PATTERNS:
        match = pattern.search(description)
        if match:
            return match.group(1)[:60]
    return ""


def _guest(summary: str, description: str, uid: str, reference: str) -> tuple[str, str]:
    match = PHONE_LAST4.search(description)
    phone = match.group(1) if match else ""
    line = GUEST_NAME_LINE.search(description)
    name = line.group(1).strip() if line else RESERVED_PREFIX.sub("", summary).strip()
    # "Reserved", "Airbnb", a bare channel word: no name, so the reservation says who it is.
    if not name or name.lower() in {"airbnb", "vrbo", "abritel", "homeaway", "booking.com"}:
        name = f"Guest {reference or uid[:8]}"
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
        if not uid or not _is_a_stay(summary, str(event.get("STATUS", ""))):
            continue
        start = _date_or_datetime(event.get("DTSTART"), number)
        if start is None:
            continue
        end = _event_end(event, start, number)
        if end is None:
            continue
        description = str(event.get("DESCRIPTION", ""))
        reference = _reference(description)
        name, phone = _guest(summary, description, uid, reference)
        stays.append(FeedStay(uid=uid[:200], check_in=_as_date_if_midnight(start),
                              check_out=_as_date_if_midnight(end), guest_name=name, guest_phone=phone,
                              channel_ref=reference))
    return stays


def _as_date_if_midnight(value: date | datetime) -> date | datetime:
    """Channels that cannot write a DATE write midnight UTC (or a floating midnight) instead; that is a day,
    not a time: read as a time it ended the guest's code at 19:00 the evening before check-out in New York."""
    if not isinstance(value, datetime) or value.time() != time(0, 0):
        return value
    if value.tzinfo is None or (value.utcoffset() == timedelta(0) and str(value.tzinfo) in {"UTC", "Z", "Etc/UTC"}):
        return value.date()
    return value


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


def _at_property_time(value: date | datetime, zone: ZoneInfo, at: time) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, at, tzinfo=zone)


def feed_apply(*, feed: BookingFeed, stays: list[FeedStay], now: datetime) -> FeedResult:
    """Bring the feed's bookings in line with a freshly parsed copy of it. Safe to repeat."""
    prop = Property.objects.select_related("tenant").get(pk=feed.property_id)  # its times as stored
    zone = ZoneInfo(prop.timezone)
    result = FeedResult(feed_id=feed.pk, property_id=prop.pk)
    existing = {b.external_ref: b for b in Booking.objects.filter(feed=feed, source=BookingSource.ICAL)}
    seen: set[str] = set()
    imported: list[str] = []
    for stay in stays:
        seen.add(stay.uid)
        check_in = _at_property_time(stay.check_in, zone, prop.checkin_time)
        check_out = _at_property_time(stay.check_out, zone, prop.checkout_time)
        booking = existing.get(stay.uid)
        try:
            if booking is None:
                if check_out <= now:
                    continue  # history the feed still lists; nothing to program
                booking = booking_services.booking_create(
                    tenant=prop.tenant, property=prop, guest_name=stay.guest_name, guest_phone=stay.guest_phone,
                    check_in=check_in, check_out=check_out, source=BookingSource.ICAL, external_ref=stay.uid,
                    feed=feed, channel_ref=stay.channel_ref, now=now,
                )
                result.created.append(booking.pk)
            elif booking.status == BookingStatus.CONFIRMED and (booking.check_in, booking.check_out) != (
                check_in, check_out
            ):
                booking_services.booking_update(booking=booking, check_in=check_in, check_out=check_out, now=now)
                result.moved.append(booking.pk)
            else:
                result.unchanged += 1
            imported.append(stay.uid)
        except booking_services.BookingOverlap as exc:
            conflict_record(prop=prop, feed=feed, source=BookingSource.ICAL, external_ref=stay.uid,
                            guest_name=stay.guest_name, check_in=check_in, check_out=check_out, clash=exc.clash,
                            now=now)
            result.conflicts.append(stay.uid)
        except ValidationError as exc:
            result.rejected.append(f"{stay.uid}: {'; '.join(exc.messages)}")
        except IntegrityError:
            # The same UID was imported from another property's feed (one listing, two feeds).
            result.rejected.append(f"{stay.uid}: already imported for another property")
    for ref, booking in existing.items():
        if ref not in seen and booking.status == BookingStatus.CONFIRMED and booking.check_out > now:
            booking_services.booking_cancel(booking=booking, now=now)
            result.cancelled.append(booking.pk)
    conflicts_resolve(prop=prop, source=BookingSource.ICAL, refs=imported, now=now)
    conflicts_resolve(prop=prop, source=BookingSource.ICAL, refs=seen, now=now, feed=feed, keep=True)
    return result


def _record(feed: BookingFeed, verb: str, message: str, now: datetime, **data: object) -> None:
    activity_record(tenant_id=feed.tenant_id, verb=verb, message=message, now=now,
                    data={"property_id": feed.property_id, "feed_id": feed.pk, **data})


def _name(feed: BookingFeed) -> str:
    return f"“{feed.label}” feed of {feed.property.name}"


def _feed_failed(*, feed: BookingFeed, error: str, now: datetime) -> FeedResult:
    if feed.last_error != error:  # one Activity per change, not one every 15 minutes
        _record(feed, "feed.failed", f"{_name(feed)} failed: {error}", now)
    BookingFeed.objects.filter(pk=feed.pk).update(last_error=error, next_sync_at=now + SYNC_EVERY)
    feed.last_error, feed.next_sync_at = error, now + SYNC_EVERY
    return FeedResult(feed_id=feed.pk, property_id=feed.property_id, error=error)


def feed_import(*, feed: BookingFeed, now: datetime) -> FeedResult:
    """Fetch, parse and apply one feed, recording failures on the feed."""
    if feed.property.archived_at is not None:
        return FeedResult(feed_id=feed.pk, property_id=feed.property_id, error="The property is archived.")
    try:
        stays = feed_parse(body=feed_fetch(url=feed.url))
    except FeedError as exc:
        return _feed_failed(feed=feed, error=str(exc), now=now)
    with transaction.atomic():
        result = feed_apply(feed=feed, stays=stays, now=now)
        if feed.last_error:
            _record(feed, "feed.recovered", f"{_name(feed)} works again", now)
        BookingFeed.objects.filter(pk=feed.pk).update(last_error="", last_synced_at=now,
                                                      next_sync_at=now + SYNC_EVERY)
        feed.last_error, feed.last_synced_at, feed.next_sync_at = "", now, now + SYNC_EVERY
        if result.created or result.moved or result.cancelled or result.conflicts:
            _record(
                feed, "feed.imported",
                f"{_name(feed)}: {len(result.created)} new, {len(result.moved)} moved, "
                f"{len(result.cancelled)} cancelled, {len(result.conflicts)} in conflict",
                now, created=result.created, moved=result.moved, cancelled=result.cancelled,
                conflicts=result.conflicts,
            )
    return result


def feeds_to_import() -> Any:
    return (BookingFeed.objects.filter(property__archived_at__isnull=True)
            .select_related("property__tenant").order_by("pk"))


def feeds_import_all(*, now: datetime) -> list[FeedResult]:
    results = []
    for feed in feeds_to_import():
        try:
            results.append(feed_import(feed=feed, now=now))
        except Exception:
            # Each feed fails alone: one feed we did not foresee must not stop every tenant's import after
            # it (a VALUE=TIME event once did). Details go to the log; the feed gets our words.
            logger.exception("iCal feed %s could not be imported", feed.pk)
            results.append(_feed_failed(feed=feed, error="The feed could not be imported.", now=now))
    return results

