"""Staff pages: dashboard, properties, bookings. Thin: read with querysets, write through services.

Every page also works without JavaScript. Actions are POST + redirect; their forms carry `hx-post` with
`hx-select="main"`, so htmx follows the redirect and swaps the fresh page body in place.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from locks.backup import locks_with_a_ready_backup
from locks.conf import engine
from locks.models import (
    SHOWN_CODE_STATUSES,
    AccessCode,
    Activity,
    CodeStatus,
    IssueStatus,
    LockCommand,
    LockIssue,
)
from locks.selectors import attention_queue, tenant_codes
from portal import services
from portal.conflicts import open_conflicts
from portal.forms import BookingForm, add_service_errors
from portal.guest_views import new_guest_link
from portal.http import AuthenticatedRequest, TenantRequest
from portal.models import Booking, BookingStatus, Membership, Role
from portal.people_code_views import people_codes
from portal.permissions import editor_required, listed_properties, visible_properties
from portal.query_params import clean_search, parse_id
from portal.templatetags.lockstep import in_motion
from portal.tenancy import get_for_tenant
from portal.timeline import Bar, Row, timeline_svg

BOOKING_PAGE_SIZE = 50

# Tab name → (label, filter builder over "now").
BOOKING_TABS = {
    "upcoming": ("Upcoming", lambda now: Q(status=BookingStatus.CONFIRMED, check_in__gt=now)),
    "current": (
        "Current",
        lambda now: Q(status=BookingStatus.CONFIRMED, check_in__lte=now, check_out__gt=now),
    ),
    "past": ("Past", lambda now: Q(status=BookingStatus.CONFIRMED, check_out__lte=now)),
    "cancelled": ("Cancelled", lambda now: Q(status=BookingStatus.CANCELLED)),
}
# Most recent first where that is what people look for.
BOOKING_TAB_ORDER = {"upcoming": "check_in", "current": "check_out", "past": "-check_out", "cancelled": "-check_in"}


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    memberships = list(Membership.objects.filter(user=request.user).select_related("tenant"))
    if len(memberships) == 1:
        only = memberships[0]
        target = "owner_home" if only.role == Role.OWNER else "dashboard"
        return redirect(target, tenant_slug=only.tenant.slug)
    return render(request, "portal/home.html", {"memberships": memberships})


def _codes_with_lock() -> Prefetch:
    return Prefetch(
        "access_codes",
        queryset=AccessCode.objects.filter(status__in=SHOWN_CODE_STATUSES).select_related("lock").order_by("lock__name"),
        to_attr="shown_codes",
    )


def dashboard(request: TenantRequest) -> HttpResponse:
    now = timezone.now()
    properties = visible_properties(request)
    codes = tenant_codes(tenant=request.tenant, properties=properties)
    # What the locks hold and will hold, not history: removed codes are counted nowhere here (their number
    # only grows, and counting it would make the page cost what the tenant has accumulated).
    counts = dict(codes.filter(status__in=SHOWN_CODE_STATUSES).order_by().values_list("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    # The IN list first: the (lock, status) index finds the few codes in motion without reading history.
    in_motion = codes.filter(status__in=[CodeStatus.SETTING, CodeStatus.REMOVING, CodeStatus.UNSET]).filter(
        Q(status__in=[CodeStatus.SETTING, CodeStatus.REMOVING])
        # A preloaded code waits for its window on the lock: nothing is moving (portal/templatetags).
        | Q(status=CodeStatus.UNSET, is_scheduled_on_device=False, program_at__lte=now)
    ).exists()
    # Owners see their own properties only; staff see the whole tenant.
    scope = None if request.membership.can_edit else properties
    context = {
        "now": now,
        "attention": attention_queue(tenant=request.tenant, now=now, properties=scope),
        "in_motion": in_motion,
        "counts": [(value, label, counts.get(value, 0)) for value, label in CodeStatus.choices
                   if value in SHOWN_CODE_STATUSES],
        "property_count": properties.count(),
        "open_issue_count": LockIssue.objects.for_tenant(request.tenant)
        .filter(status=IssueStatus.OPEN, lock__property__in=properties)
        .count(),
        "activities": Activity.objects.for_tenant(request.tenant)
        .filter(Q(lock__property__in=properties) | Q(booking__property__in=properties))
        .select_related("actor", "booking", "lock", "access_code__booking", "command")[:15],
    }
    template = "portal/dashboard.html#board" if request.htmx else "portal/dashboard.html"
    return render(request, template, context)


def property_list(request: TenantRequest) -> HttpResponse:
    now = timezone.now()
    properties = listed_properties(request).annotate(
        lock_count=Count("locks", distinct=True),
        offline_count=Count("locks", filter=Q(locks__online=False), distinct=True),
        upcoming=Count(
            "bookings",
            filter=Q(bookings__check_out__gte=now, bookings__status=BookingStatus.CONFIRMED),
            distinct=True,
        ),
    )
    return render(request, "portal/property_list.html", {"properties": properties})


def property_detail(request: TenantRequest, property_id: int) -> HttpResponse:
    now = timezone.now()
    prop = get_for_tenant(visible_properties(request).select_related("tenant"), request.tenant, pk=property_id)
    locks = list(
        prop.locks.filter(managed=True).select_related("provider_account").annotate(
            open_issues=Count("issues", filter=Q(issues__status=IssueStatus.OPEN), distinct=True)
        )
    )
    bookings = list(
        prop.bookings.filter(check_out__gte=now, status=BookingStatus.CONFIRMED)
        .select_related("feed").prefetch_related(_codes_with_lock())
        .order_by("check_in")[:50]
    )
    rows = [Row(label=lock.name) for lock in locks]
    row_by_lock = {lock.pk: row for lock, row in zip(locks, rows, strict=True)}
    for booking in bookings:
        for code in booking.shown_codes:
            if code.lock_id in row_by_lock:
                row_by_lock[code.lock_id].bars.append(
                    Bar(
                        starts_at=code.starts_at or booking.check_in,
                        ends_at=code.ends_at or booking.check_out,
                        label=booking.guest_name,
                        status=code.status,
                    )
                )
    stays = Row(
        label="Stays",
        bars=[Bar(b.check_in, b.check_out, b.guest_name, "booking") for b in bookings],
    )
    context = {
        "property": prop,
        "locks": locks,
        "bookings": bookings,
        "timeline": timeline_svg(rows=[stays, *rows], now=now, tz_name=prop.timezone),
        "low_battery": engine().LOW_BATTERY_LEVEL,
        "failed_count": AccessCode.objects.filter(lock__property=prop, status=CodeStatus.FAILED).count(),
        "feeds": list(prop.feeds.all()),
        "conflicts": list(open_conflicts(prop)),
        "people_codes": people_codes(prop=prop),
    }
    return render(request, "portal/property_detail.html", context)


def booking_list(request: TenantRequest) -> HttpResponse:
    now = timezone.now()
    tab = request.GET.get("tab", "upcoming")
    if tab not in BOOKING_TABS:
        tab = "upcoming"
    query = clean_search(request.GET.get("q"))
    bookings = (
        Booking.objects.for_tenant(request.tenant)
        .filter(property__in=visible_properties(request))
        .filter(BOOKING_TABS[tab][1](now))
    )
    if query:
        bookings = bookings.filter(
            Q(guest_name__icontains=query) | Q(external_ref__icontains=query) | Q(guest_email__icontains=query)
        )
    bookings = (
        bookings.select_related("property").prefetch_related(_codes_with_lock()).order_by(BOOKING_TAB_ORDER[tab], "id")
    )
    page = Paginator(bookings, BOOKING_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "tabs": [(name, label) for name, (label, _) in BOOKING_TABS.items()],
        "tab": tab,
        "q": query,
        "page": page,
        "bookings": page.object_list,
    }
    template = "portal/booking_list.html#results" if request.htmx else "portal/booking_list.html"
    return render(request, template, context)


def _booking_for(request: TenantRequest, booking_id: int) -> Booking:
    return get_for_tenant(
        Booking.objects.filter(property__in=visible_properties(request)).select_related("property", "feed"),
        request.tenant,
        pk=booking_id,
    )


def booking_detail(request: TenantRequest, booking_id: int) -> HttpResponse:
    booking = _booking_for(request, booking_id)
    # While a code moves, the commands and timeline section refreshes itself (htmx asks for that part).
    part = "#history" if request.htmx and request.GET.get("part") == "history" else ""
    context = booking_context(booking)
    if not part and request.membership.can_edit:
        context["new_guest_link"] = new_guest_link(request, booking)
    return render(request, f"portal/booking_detail.html{part}", context)


def booking_context(booking: Booking, *, revealed: dict[int, str] | None = None) -> dict:
    """What the booking page shows; `revealed` holds PINs just revealed (the no-JavaScript path)."""
    codes = list(booking.access_codes.select_related("lock", "booking").order_by("lock__name", "id"))
    for code in codes:
        code.revealed_pin = (revealed or {}).get(code.pk)
    commands = list(
        LockCommand.objects.filter(access_code__booking=booking)
        .select_related("lock", "access_code__booking")
        .order_by("-created_at", "-id")[:50]
    )
    activities = list(
        Activity.objects.filter(Q(booking=booking) | Q(access_code__booking=booking))
        .select_related("actor", "lock", "access_code__booking", "command")
        .order_by("-created_at", "-id")[:50]
    )
    issues = list(
        LockIssue.objects.filter(access_code__booking=booking, status=IssueStatus.OPEN).select_related("lock")
    )
    return {
        "booking": booking,
        "codes": codes,
        "commands": commands,
        "activities": activities,
        "issues": issues,
        "in_motion": any(in_motion(code) for code in codes),
        # Codes a new PIN goes on beside (locks/pin_change.py): they keep working until the guest is told.
        "replaced": {code.replaces_id for code in codes
                     if code.replaces_id and code.status not in (CodeStatus.REMOVING, CodeStatus.REMOVED)},
        "backup_locks": locks_with_a_ready_backup(booking) if booking.status == BookingStatus.CONFIRMED else [],
        "guest_messages": list(booking.messages.order_by("-created_at", "-id")[:20]),
    }


@editor_required
@require_http_methods(["GET", "POST"])
def booking_create(request: TenantRequest) -> HttpResponse:
    properties = listed_properties(request)
    initial = {}
    chosen = properties.filter(pk=parse_id(request.GET.get("property")) or 0).first() or properties.first()
    if chosen is not None:
        initial = {"property": chosen, "check_in_time": chosen.checkin_time, "check_out_time": chosen.checkout_time}
    form = BookingForm(request.POST or None, properties=properties, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            booking = services.booking_create(
                tenant=request.tenant, actor=request.user, now=timezone.now(), **form.service_kwargs()
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Booking for {booking.guest_name} saved; its codes are on their way.")
            return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)
    return render(request, "portal/booking_form.html", {"form": form, "booking": None})


@editor_required
@require_http_methods(["GET", "POST"])
def booking_edit(request: TenantRequest, booking_id: int) -> HttpResponse:
    booking = _booking_for(request, booking_id)
    if booking.status == BookingStatus.CANCELLED:
        messages.error(request, "A cancelled booking cannot be changed.")
        return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)
    form = BookingForm(request.POST or None, properties=listed_properties(request), booking=booking)
    if request.method == "POST" and form.is_valid():
        try:
            services.booking_update(booking=booking, actor=request.user, now=timezone.now(), **form.service_kwargs())
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Booking changed; codes on the locks follow the new dates.")
            return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)
    return render(request, "portal/booking_form.html", {"form": form, "booking": booking})


@editor_required
@require_http_methods(["GET", "POST"])
def booking_cancel(request: TenantRequest, booking_id: int) -> HttpResponse:
    booking = _booking_for(request, booking_id)
    if request.method == "POST":
        if booking.status != BookingStatus.CANCELLED:
            services.booking_cancel(booking=booking, actor=request.user, now=timezone.now())
            messages.success(request, f"Booking for {booking.guest_name} cancelled; its codes are being removed.")
        return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)
    codes = booking.access_codes.filter(status__in=SHOWN_CODE_STATUSES).select_related("lock")
    return render(request, "portal/booking_cancel.html", {"booking": booking, "codes": codes})

