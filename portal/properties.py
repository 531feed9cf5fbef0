"""Property services: create, edit, archive, booking feeds, and re-planning codes when what shapes them
changes (DESIGN §3 Property, BookingFeed; §7 "properties are created and edited here").

Buffers and PIN policy are "tenant default" (NULL / "") or the property's own; `Property.effective_…`
resolves them. A change that moves code windows (a property's own buffers, or a tenant default that
properties follow) re-plans the future confirmed bookings concerned: `codes_sync_for_booking` moves codes
that are not on the lock yet and queues updates for those that are. Archiving removes future codes
through the queue and keeps every row for history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from locks.activity import activity_record
from locks.planning import codes_sync_for_booking
from locks.turnover import turnover_codes_sync
from portal.models import Booking, BookingFeed, BookingStatus, Property, Tenant

PROPERTY_FIELDS = ("name", "address", "timezone", "checkin_time", "checkout_time", "before_minutes",
                   "after_minutes", "pin_policy", "turnover_codes", "backup_pool_size", "guest_instructions",
                   "no_entry_alert_hours", "message_offset_hours", "message_second_offset_hours")
# What staff may change; the rest (name, address, zone, PIN policy) is an admin's.
STAFF_FIELDS = ("checkin_time", "checkout_time", "before_minutes", "after_minutes", "guest_instructions",
                "no_entry_alert_hours", "message_offset_hours", "message_second_offset_hours")
# Fields whose change moves the codes of stays already booked (check-in/out times apply to new stays).
REPLAN_FIELDS = {"before_minutes", "after_minutes", "pin_policy", "turnover_codes"}
# Tenant default → the property field that, when unset, follows it.
DEFAULT_OF = {"default_before_minutes": "before_minutes", "default_after_minutes": "after_minutes",
              "default_pin_policy": "pin_policy"}


def _record(prop: Property, actor: User | None, verb: str, message: str, now: datetime,
            **data: Any) -> None:
    activity_record(tenant_id=prop.tenant_id, actor=actor, verb=verb, message=message, now=now,
                    data={"property_id": prop.pk, **data})


def _check(prop: Property) -> None:
    try:
        prop.full_clean(exclude=["tenant", "owners"])
    except ValidationError as exc:
        if "__all__" in exc.message_dict:  # the unique name constraint
            raise ValidationError({"name": "Another property already has this name."}) from exc
        raise


def property_replan(*, prop: Property, now: datetime, actor: User | None = None) -> int:
    """Bring the codes of the property's future confirmed stays in line with its settings. Returns how
    many bookings were looked at."""
    bookings = Booking.objects.filter(property=prop, status=BookingStatus.CONFIRMED, check_out__gt=now)
    count = 0
    for booking in bookings.select_related("property__tenant", "tenant").order_by("check_in", "pk"):
        codes_sync_for_booking(booking=booking, now=now, actor=actor)
        count += 1
    turnover_codes_sync(prop=prop, now=now, actor=actor)
    return count


@transaction.atomic
def property_create(*, tenant: Tenant, actor: User | None, now: datetime, **fields: Any) -> Property:
    unknown = set(fields) - set(PROPERTY_FIELDS)
    if unknown:
        raise TypeError(f"not a property field: {', '.join(sorted(unknown))}")
    prop = Property(tenant=tenant, **{k: v for k, v in fields.items() if v is not None})
    if isinstance(prop.name, str):
        prop.name = prop.name.strip()
    _check(prop)
    try:
        with transaction.atomic():
            prop.save()
    except IntegrityError as exc:
        raise ValidationError({"name": "Another property already has this name."}) from exc
    _record(prop, actor, "property.created", f"{actor} created the property {prop.name}", now)
    return prop


@transaction.atomic
def property_update(
    *, prop: Property, actor: User | None, now: datetime, allowed: Iterable[str] = PROPERTY_FIELDS,
    **changes: Any,
) -> Property:
    """Change a property; `allowed` is what the caller's role may change (staff: STAFF_FIELDS)."""
    refused = set(changes) - set(allowed)
    if refused:
        raise ValidationError({name: "You cannot change this." for name in sorted(refused)})
    prop = Property.objects.select_for_update().select_related("tenant").get(pk=prop.pk)
    if prop.archived_at is not None:
        raise ValidationError("An archived property cannot be changed.")
    changed = {name: value for name, value in changes.items() if getattr(prop, name) != value}
    if not changed:
        return prop
    for name, value in changed.items():
        setattr(prop, name, value.strip() if name == "name" and isinstance(value, str) else value)
    _check(prop)
    try:
        with transaction.atomic():
            prop.save(update_fields=list(changed))
    except IntegrityError as exc:
        raise ValidationError({"name": "Another property already has this name."}) from exc
    _record(prop, actor, "property.updated",
            f"{actor} changed {prop.name}: " + ", ".join(name.replace("_", " ") for name in changed), now,
            fields=sorted(changed))
    if REPLAN_FIELDS & set(changed):
        property_replan(prop=prop, now=now, actor=actor)
    return prop


@transaction.atomic
def property_archive(*, prop: Property, actor: User | None, now: datetime) -> Property:
    """Hide the property from lists and pickers, stop its feeds and take its future codes off the locks
    (through the queue). Bookings, codes and Activity stay for history; its page still renders."""
    prop = Property.objects.select_for_update().select_related("tenant").get(pk=prop.pk)
    if prop.archived_at is not None:
        return prop
    prop.archived_at = now
    prop.save(update_fields=["archived_at"])
    _record(prop, actor, "property.archived", f"{actor} archived {prop.name}; its future codes are removed", now)
    property_replan(prop=prop, now=now, actor=actor)
    return prop


def properties_follow_defaults(
    *, tenant: Tenant, changed: Iterable[str], now: datetime, actor: User | None = None
) -> list[Property]:
    """Tenant defaults changed: re-plan every live property that follows (does not override) one of them."""
    follows = Q()
    for name in changed:
        field = DEFAULT_OF.get(name)
        if field is not None:
            follows |= Q(**{f"{field}__isnull": True}) if field != "pin_policy" else Q(pin_policy="")
    if not follows:
        return []
    props = list(Property.objects.for_tenant(tenant).filter(archived_at__isnull=True).filter(follows))
    for prop in props:
        property_replan(prop=prop, now=now, actor=actor)
    return props


@transaction.atomic
def feed_add(*, prop: Property, label: str, url: str, actor: User | None, now: datetime) -> BookingFeed:
    if prop.archived_at is not None:
        raise ValidationError("An archived property takes no feeds.")
    if not label.strip():
        raise ValidationError({"label": "Name the feed (e.g. Airbnb)."})
    feed = BookingFeed.objects.create(tenant_id=prop.tenant_id, property=prop, label=label.strip()[:60], url=url,
                                      next_sync_at=now)
    # The URL is the channel's secret link: Activity names the feed, never the address.
    _record(prop, actor, "feed.added", f"{actor} added the “{feed.label}” feed to {prop.name}", now,
            feed_id=feed.pk)
    return feed


@transaction.atomic
def feed_remove(*, feed: BookingFeed, actor: User | None, now: datetime) -> None:
    """Stop syncing a feed. Its bookings stay as they are (no longer updated by the channel)."""
    prop = feed.property
    _record(prop, actor, "feed.removed", f"{actor} removed the “{feed.label}” feed of {prop.name}", now,
            feed_id=feed.pk)
    feed.delete()
