from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from locks.models import AccessCode, Activity, CodeStatus, LockIssue
from portal.models import Booking, BookingStatus, Membership
from portal.permissions import admin_required, visible_properties
from portal.tenancy import get_for_tenant


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = list(Membership.objects.filter(user=request.user).select_related("tenant"))
    if len(memberships) == 1:
        return redirect("dashboard", tenant_slug=memberships[0].tenant.slug)
    return render(request, "portal/home.html", {"memberships": memberships})


def dashboard(request: HttpRequest) -> HttpResponse:
    properties = visible_properties(request)
    codes = AccessCode.objects.for_tenant(request.tenant).filter(lock__property__in=properties)
    counts = dict(codes.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    context = {
        "counts": [(value, label, counts.get(value, 0)) for value, label in CodeStatus.choices],
        "property_count": properties.count(),
        "open_issue_count": LockIssue.objects.for_tenant(request.tenant)
        .filter(status="open", lock__property__in=properties)
        .count(),
        "activities": Activity.objects.for_tenant(request.tenant)
        .filter(Q(lock__property__in=properties) | Q(booking__property__in=properties))
        .select_related("actor")[:15],
    }
    return render(request, "portal/dashboard.html", context)


def property_list(request: HttpRequest) -> HttpResponse:
    properties = visible_properties(request).annotate(
        lock_count=Count("locks", distinct=True),
        upcoming=Count(
            "bookings",
            filter=Q(bookings__check_out__gte=timezone.now(), bookings__status=BookingStatus.CONFIRMED),
            distinct=True,
        ),
    )
    return render(request, "portal/property_list.html", {"properties": properties})


def property_detail(request: HttpRequest, property_id: int) -> HttpResponse:
    prop = get_for_tenant(visible_properties(request), request.tenant, pk=property_id)
    bookings = prop.bookings.filter(check_out__gte=timezone.now()).order_by("check_in")[:50]
    return render(request, "portal/property_detail.html", {"property": prop, "locks": prop.locks.all(), "bookings": bookings})


def booking_list(request: HttpRequest) -> HttpResponse:
    bookings = (
        Booking.objects.for_tenant(request.tenant)
        .filter(property__in=visible_properties(request))
        .select_related("property")
        .order_by("check_in")
    )
    return render(request, "portal/booking_list.html", {"bookings": bookings[:200]})


def booking_detail(request: HttpRequest, booking_id: int) -> HttpResponse:
    booking = get_for_tenant(
        Booking.objects.filter(property__in=visible_properties(request)).select_related("property"),
        request.tenant,
        pk=booking_id,
    )
    codes = booking.access_codes.select_related("lock").order_by("lock__name")
    return render(request, "portal/booking_detail.html", {"booking": booking, "codes": codes})


@admin_required
def settings_home(request: HttpRequest) -> HttpResponse:
    members = Membership.objects.for_tenant(request.tenant).select_related("user").order_by("user__username")
    return render(request, "portal/settings.html", {"members": members})
