"""Booking services: every write to a booking goes through here (pages, API, feeds, CSV, seed).

Each one keeps the booking's AccessCodes in step (locks.planning.codes_sync_for_booking) in the same
transaction, and the engine enqueues a dispatch on commit, so a code that is due goes out in seconds.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from locks.activity import activity_record
from locks.planning import codes_sync_for_booking
from locks.turnover import turnover_codes_sync
from portal.models import Booking, BookingFeed, BookingSource, BookingStatus, Property, Tenant

UPDATABLE_FIELDS = ("property", "guest_name", "guest_phone", "guest_email", "check_in", "check_out", "notes",
                    "language")
OVERLAP_CONSTRAINT = "booking_no_overlapping_stays"  # portal/migrations/0005 (PostgreSQL)


class BookingOverlap(ValidationError):
    """The stay overlaps a confirmed booking of the same property (`clash`); nothing was saved."""

    def __init__(self, clash: Booking | None, prop: Property) -> None:
        self.clash = clash
        if clash is None:
            message = f"Overlaps another confirmed booking at {prop.name}."
        else:
            zone = ZoneInfo(prop.timezone)
            message = (
                f"Overlaps the confirmed booking of {clash.guest_name} "
                f"({clash.check_in.astimezone(zone):%b %-d %H:%M} → {clash.check_out.astimezone(zone):%b %-d %H:%M}) "
                f"at {prop.name}."
            )
        super().__init__({"check_in": [message]})


def booking_overlapping(
    *, prop: Property, check_in: datetime, check_out: datetime, exclude: Booking | None = None
) -> Booking | None:
    """The first confirmed booking of `prop` that shares time with [check_in, check_out)."""
    others = Booking.objects.filter(
        property=prop, status=BookingStatus.CONFIRMED, check_in__lt=check_out, check_out__gt=check_in
    )
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    return others.order_by("check_in", "pk").first()


def _lock_property(prop: Property) -> Property:
    """Take the property's row lock for the rest of the transaction: one writer of a property's stays at a
    time, so "check for an overlap, then save" cannot interleave (six parallel form posts once made five
    overlapping stays). On PostgreSQL the exclusion constraint backs this up."""
    return Property.objects.select_for_update(no_key=True).select_related("tenant").get(pk=prop.pk)


def _refuse_overlap(prop: Property, check_in: datetime, check_out: datetime, exclude: Booking | None) -> None:
    clash = booking_overlapping(prop=prop, check_in=check_in, check_out=check_out, exclude=exclude)
    if clash is not None:
        raise BookingOverlap(clash, prop)


def _overlap_from_integrity(exc: IntegrityError, prop: Property, check_in: datetime, check_out: datetime,
                            exclude: Booking | None) -> None:
    if OVERLAP_CONSTRAINT in str(exc):
        raise BookingOverlap(
            booking_overlapping(prop=prop, check_in=check_in, check_out=check_out, exclude=exclude), prop
        ) from exc
CODE_FIELDS = {"property", "guest_name", "guest_phone", "check_in", "check_out"}


def _validate_dates(check_in: datetime, check_out: datetime) -> None:
    if check_in.tzinfo is None or check_out.tzinfo is None:
        raise ValidationError({"check_in": "Dates must carry a time zone."})
    if check_out <= check_in:
        raise ValidationError({"check_out": "Check-out must be after check-in."})


def _validate_guest(guest_name: str) -> None:
    if not guest_name or not guest_name.strip():
        raise ValidationError({"guest_name": "The guest's name is required."})


@transaction.atomic
def booking_create(
    *,
    tenant: Tenant,
    property: Property,
    guest_name: str,
    check_in: datetime,
    check_out: datetime,
    guest_phone: str = "",
    guest_email: str = "",
    source: str = BookingSource.MANUAL,
    external_ref: str = "",
    notes: str = "",
    feed: BookingFeed | None = None,
    channel_ref: str = "",
    language: str = "",
    actor: User | None = None,
    now: datetime | None = None,
) -> Booking:
    now = now or timezone.now()
    if property.tenant_id != tenant.pk or (feed is not None and feed.property_id != property.pk):
        raise ValidationError({"property": "Unknown property."})
    _validate_guest(guest_name)
    _validate_dates(check_in, check_out)
    if source not in BookingSource.values:
        raise ValidationError({"source": f"Unknown source {source!r}."})
    prop = _lock_property(property)
    if prop.archived_at is not None:
        raise ValidationError({"property": f"{prop.name} is archived."})
    if external_ref and Booking.objects.filter(tenant=tenant, source=source, external_ref=external_ref).exists():
        raise ValidationError({"external_ref": "A booking with this reference already exists."})
    _refuse_overlap(prop, check_in, check_out, None)
    try:
        with transaction.atomic():
            booking = Booking.objects.create(
                tenant=tenant,
                property=prop,
                guest_name=guest_name.strip(),
                guest_phone=guest_phone,
                guest_email=guest_email,
                check_in=check_in,
                check_out=check_out,
                source=source,
                external_ref=external_ref,
                feed=feed,
                channel_ref=channel_ref[:60],
                notes=notes,
                language=language_clean(language),
            )
    except IntegrityError as exc:
        _overlap_from_integrity(exc, prop, check_in, check_out, None)
        raise
    _record(booking, actor, now, "booking.created", f"Booking for {booking.guest_name} created ({source})")
    codes_sync_for_booking(booking=booking, now=now, actor=actor)
    turnover_codes_sync(prop=booking.property, now=now, actor=actor)
    return booking


LANGUAGE_TAG = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,4})?$"  # "pt", "de-AT", "zh-Hant": what a template may be in


def language_clean(value: str) -> str:
    """A guest's language as templates are keyed ("de-AT " → "de-at"); blank is English."""
    value = (value or "").strip()
    if value and not re.match(LANGUAGE_TAG, value):
        raise ValidationError({"language": f"“{value[:20]}” is not a language tag (e.g. pt, de-AT)."})
    return value.lower()


@transaction.atomic
def booking_update(
    *, booking: Booking, actor: User | None = None, now: datetime | None = None, **changes: Any
) -> Booking:
    """Change a booking's property, guest details, dates or notes; its codes follow."""
    now = now or timezone.now()
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    booking = Booking.objects.select_for_update().select_related("property").get(pk=booking.pk)
    if "language" in changes:
        changes["language"] = language_clean(changes["language"])
    changed = {name: value for name, value in changes.items() if getattr(booking, name) != value}
    if not changed:
        return booking
    if booking.status == BookingStatus.CANCELLED and set(changed) & CODE_FIELDS:
        raise ValidationError({"__all__": "A cancelled booking cannot be changed."})
    new_property = changed.get("property")
    if new_property is not None and new_property.tenant_id != booking.tenant_id:
        raise ValidationError({"property": "Unknown property."})
    if "guest_name" in changed:
        _validate_guest(changed["guest_name"])
        changed["guest_name"] = changed["guest_name"].strip()
    check_in, check_out = changed.get("check_in", booking.check_in), changed.get("check_out", booking.check_out)
    _validate_dates(check_in, check_out)
    if booking.status == BookingStatus.CONFIRMED and {"property", "check_in", "check_out"} & set(changed):
        prop = _lock_property(changed.get("property", booking.property))
        if "property" in changed and prop.archived_at is not None:
            raise ValidationError({"property": f"{prop.name} is archived."})
        _refuse_overlap(prop, check_in, check_out, booking)
    old_property = booking.property
    for name, value in changed.items():
        setattr(booking, name, value)
    try:
        with transaction.atomic():
            booking.save(update_fields=[*changed, "updated_at"])
    except IntegrityError as exc:
        _overlap_from_integrity(exc, booking.property, check_in, check_out, booking)
        raise
    _record(booking, actor, now, "booking.updated", f"Booking for {booking.guest_name} changed: "
            + ", ".join(name.replace("_", " ") for name in changed), fields=sorted(changed))
    if set(changed) & CODE_FIELDS:
        codes_sync_for_booking(booking=booking, now=now, actor=actor)
        # The cleaner's gaps around this stay move with it (on the property it left, too).
        for prop in {old_property, booking.property}:
            turnover_codes_sync(prop=prop, now=now, actor=actor)
    return booking


@transaction.atomic
def booking_cancel(*, booking: Booking, actor: User | None = None, now: datetime | None = None) -> Booking:
    """Cancel a booking: its codes come off the locks (or never go on). Cancelling twice is a no-op."""
    now = now or timezone.now()
    booking = Booking.objects.select_for_update().select_related("property").get(pk=booking.pk)
    if booking.status == BookingStatus.CANCELLED:
        return booking
    booking.status = BookingStatus.CANCELLED
    booking.save(update_fields=["status", "updated_at"])
    _record(booking, actor, now, "booking.cancelled", f"Booking for {booking.guest_name} cancelled")
    codes_sync_for_booking(booking=booking, now=now, actor=actor)
    turnover_codes_sync(prop=booking.property, now=now, actor=actor)
    return booking


def _record(
    booking: Booking, actor: User | None, now: datetime, verb: str, message: str, **data: Any
) -> None:
    activity_record(tenant_id=booking.tenant_id, booking_id=booking.pk, actor=actor, verb=verb, message=message,
                    now=now, data=data)


__all__ = ["BookingOverlap", "BookingStatus", "booking_cancel", "booking_create", "booking_overlapping",
           "booking_update"]
