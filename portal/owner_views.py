"""The owner portal: an owner's own properties, their bookings, each code's status and lock health.

Read-only. The one thing an owner can do is reveal a guest's PIN (a POST to locks:code_reveal), which
the engine records in Activity.
"""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from locks.models import SHOWN_CODE_STATUSES, AccessCode, IssueStatus, Lock
from portal.http import TenantRequest
from portal.models import Booking, BookingStatus
from portal.permissions import visible_properties

OWNER_BOOKING_LIMIT = 100


def owner_home(request: TenantRequest) -> HttpResponse:
    now = timezone.now()
    properties = visible_properties(request)
    bookings = (
        Booking.objects.filter(property__in=properties, status=BookingStatus.CONFIRMED, check_out__gt=now)
        .prefetch_related(
            Prefetch(
                "access_codes",
                queryset=AccessCode.objects.filter(status__in=SHOWN_CODE_STATUSES)
                .select_related("lock")
                .order_by("lock__name"),
                to_attr="shown_codes",
            )
        )
        .order_by("check_in")
    )
    locks = (
        Lock.objects.filter(property__in=properties)
        .annotate(open_issues=Count("issues", filter=Q(issues__status=IssueStatus.OPEN), distinct=True))
        .order_by("name")
    )
    by_property: dict[int, dict] = {
        prop.pk: {"property": prop, "locks": [], "bookings": []} for prop in properties.order_by("name")
    }
    for lock in locks:
        by_property[lock.property_id]["locks"].append(lock)
    for booking in bookings[:OWNER_BOOKING_LIMIT]:
        by_property[booking.property_id]["bookings"].append(booking)
    return render(request, "owner/home.html", {"sections": list(by_property.values()), "now": now})
