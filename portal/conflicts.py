"""Booking conflicts: a stay from a feed or a CSV file that overlaps a confirmed booking of its property.

Confirmed stays never overlap (DESIGN §3), so such a stay is not imported; it is kept here, shown on the
property page with the booking it clashes with, until the clash is gone (the stay imports on a later
sync), its feed stops listing it, or staff dismiss it. Repeated syncs update the one open row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet

from locks.activity import activity_record
from portal.models import Booking, BookingConflict, BookingFeed, Property


@transaction.atomic
def conflict_record(
    *,
    prop: Property,
    feed: BookingFeed | None,
    source: str,
    external_ref: str,
    guest_name: str,
    check_in: datetime,
    check_out: datetime,
    clash: Booking | None,
    now: datetime,
) -> BookingConflict:
    fields = {"feed": feed, "guest_name": guest_name[:200], "check_in": check_in, "check_out": check_out,
              "clashes_with": clash, "last_seen_at": now}
    if external_ref:
        conflict = BookingConflict.objects.filter(
            property=prop, source=source, external_ref=external_ref, resolved_at__isnull=True
        ).first()
        if conflict is not None:
            BookingConflict.objects.filter(pk=conflict.pk).update(**fields)
            return conflict
    conflict = BookingConflict.objects.create(
        tenant_id=prop.tenant_id, property=prop, source=source, external_ref=external_ref, first_seen_at=now,
        **fields,
    )
    with_whom = f" overlaps {clash.guest_name}'s stay" if clash is not None else " overlaps a confirmed stay"
    activity_record(
        tenant_id=prop.tenant_id, verb="booking.conflict", now=now, booking_id=clash.pk if clash else None,
        message=f"Not imported: {conflict.guest_name} ({conflict.get_source_display()}){with_whom} at {prop.name}",
        data={"conflict_id": conflict.pk, "property_id": prop.pk, "external_ref": external_ref},
    )
    return conflict


def conflicts_resolve(
    *, prop: Property, source: str, refs: Iterable[str], now: datetime, feed: BookingFeed | None = None,
    keep: bool = False,
) -> int:
    """Close the open conflicts of these refs (they imported); with `keep`, close every open conflict of
    `feed` whose ref is NOT in refs (the feed no longer lists it)."""
    open_rows = BookingConflict.objects.filter(property=prop, source=source, resolved_at__isnull=True)
    if feed is not None:
        open_rows = open_rows.filter(feed=feed)
    refs = list(refs)
    chosen = open_rows.exclude(external_ref__in=refs) if keep else open_rows.filter(external_ref__in=refs)
    return chosen.update(resolved_at=now)


@transaction.atomic
def conflict_dismiss(*, conflict: BookingConflict, actor: User, now: datetime) -> None:
    if BookingConflict.objects.filter(pk=conflict.pk, resolved_at__isnull=True).update(resolved_at=now):
        activity_record(
            tenant_id=conflict.tenant_id, verb="booking.conflict_dismissed", now=now, actor=actor,
            message=f"{actor} dismissed the conflict of {conflict.guest_name} at {conflict.property.name}",
            data={"conflict_id": conflict.pk},
        )


def open_conflicts(prop: Property) -> QuerySet[BookingConflict]:
    return prop.conflicts.filter(resolved_at__isnull=True).select_related("clashes_with", "feed")
