"""The guest page (DESIGN §7): `/g/<token>/`, no login, for one stay.

It shows the property, the stay's window in the property's time, the instructions, and each door's code
only once that door has confirmed it (set, or preloaded and confirmed on a lock that schedules natively);
until then the door reads "being set up", and after check-out the codes are gone. Nothing else of the
tenant appears: no staff, no other stay, no vendor words. "My code doesn't work" queues a read of each
door, opens an urgent issue and shows a backup code confirmed on the door where the lock keeps a pool.

Every request spends the caller's address's budget first; an unknown, replaced, turned-off or expired
link is the same 404 as a wrong one. Staff make (or replace) the link on the booking page: only its hash
is stored, so it is shown once, like an API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from locks.activity import activity_record
from locks.guest_reports import guest_report_code_not_working, stay_backup_codes
from locks.models import AccessCode, CodePurpose, CodeStatus
from locks.selectors import code_is_confirmed
from portal.alerts import alerts_send_soon
from portal.client_ip import client_ip_address
from portal.guest_links import booking_for_guest_token, guest_link_create, guest_link_revoke
from portal.http import TenantRequest
from portal.models import Booking, BookingStatus
from portal.permissions import editor_required, visible_properties
from portal.tenancy import get_for_tenant
from portal.throttles import RevealDecision, budget_claim

NEW_LINK_SESSION = "guest_link:new"
# A guest looking at their codes is recorded (DESIGN §9 "PIN views recorded"), once per this many seconds.
VIEW_RECORD_EVERY = 30 * 60


@dataclass(frozen=True)
class Door:
    name: str
    pin: str  # "" unless the door has confirmed the code
    scheduled_from: datetime | None  # preloaded on a natively scheduling lock: it opens from then


def guest_doors(booking: Booking) -> list[Door]:
    """Each door of the stay with the PIN only where it is confirmed: its latest guest code confirmed on the door
    (while a new PIN goes on beside the old one, the old until the new is on), else its latest code."""
    latest: dict[int, AccessCode] = {}
    codes = (AccessCode.objects.select_related("lock").filter(booking=booking, purpose=CodePurpose.GUEST)
             .exclude(status=CodeStatus.REMOVED).order_by("lock__name", "-id"))
    for code in codes:
        if code.lock_id not in latest or (code_is_confirmed(code) and not code_is_confirmed(latest[code.lock_id])):
            latest[code.lock_id] = code
    doors = []
    for code in latest.values():
        confirmed = code_is_confirmed(code)
        waits = confirmed and code.status == CodeStatus.UNSET
        doors.append(Door(code.lock.name, code.pin if confirmed else "", code.starts_at if waits else None))
    return doors


def _address(request: HttpRequest) -> str:
    return client_ip_address(request) or "unknown"


def _spend(request: HttpRequest, *, now: datetime) -> RevealDecision:
    return budget_claim(key=f"guest-page:ip:{_address(request)}", limit=settings.GUEST_PAGE_REQUESTS_PER_MINUTE,
                        window=60, now=now)


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "guest/not_found.html", status=404)


def _throttled(request: HttpRequest, decision: RevealDecision) -> HttpResponse:
    response = render(request, "guest/throttled.html", {"retry_after": decision.retry_after}, status=429)
    response["Retry-After"] = str(decision.retry_after)
    return response


def _record_view(booking: Booking, doors: list[Door], *, now: datetime) -> None:
    shown = [door.name for door in doors if door.pin]
    if shown and cache.add(f"guest-page:viewed:{booking.pk}", 1, timeout=VIEW_RECORD_EVERY):
        activity_record(tenant_id=booking.tenant_id, verb="guest.page_viewed", booking_id=booking.pk, now=now,
                        message=f"The guest page showed the codes of {', '.join(shown)}")


def _stay(request: HttpRequest, token: str, *, now: datetime) -> Booking | HttpResponse:
    """The stay the link opens, after the caller's address spent its budget; else the answer to give."""
    decision = _spend(request, now=now)
    if not decision.allowed:
        return _throttled(request, decision)
    booking = booking_for_guest_token(token, now=now)
    return _not_found(request) if booking is None else booking


@never_cache
@require_GET
def guest_page(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    booking = _stay(request, token, now=now)
    if isinstance(booking, HttpResponse):
        return booking
    ended = now >= booking.check_out
    doors = [] if ended else guest_doors(booking)
    backups = [] if ended else stay_backup_codes(booking)
    _record_view(booking, doors, now=now)
    prop = booking.property
    return render(request, "guest/page.html", {
        "booking": booking, "property": prop, "tz": prop.timezone, "doors": doors, "backups": backups,
        "ended": ended, "started": now >= booking.check_in, "token": token,
        "reported": request.GET.get("reported") == "1",
    })


@never_cache
@require_POST
def guest_report(request: HttpRequest, token: str) -> HttpResponse:
    """"My code doesn't work": a read of each door now, an urgent issue, a backup code where there is one."""
    now = timezone.now()
    booking = _stay(request, token, now=now)
    if isinstance(booking, HttpResponse):
        return booking
    if now >= booking.check_out:
        return redirect("guest_page", token=token)
    per_stay = budget_claim(key=f"guest-report:booking:{booking.pk}", limit=settings.GUEST_REPORTS_PER_HOUR,
                            window=3600, now=now)
    if not per_stay.allowed:
        return _throttled(request, per_stay)
    guest_report_code_not_working(booking=booking, report=request.POST.get("report", ""), now=now)
    alerts_send_soon()
    return redirect(reverse("guest_page", args=[token]) + "?reported=1")


# --- staff: the link, from the booking page


def _booking(request: TenantRequest, booking_id: int) -> Booking:
    return get_for_tenant(Booking.objects.filter(property__in=visible_properties(request)), request.tenant,
                          pk=booking_id)


@editor_required
@require_POST
def guest_link_new(request: TenantRequest, booking_id: int) -> HttpResponse:
    booking = _booking(request, booking_id)
    if booking.status != BookingStatus.CONFIRMED:
        messages.error(request, "A cancelled booking has no guest page.")
    else:
        url = guest_link_create(booking=booking, now=timezone.now(), actor=request.user)
        # Shown once, on the next page load only (post/redirect/get, so a reload cannot repeat it).
        request.session[NEW_LINK_SESSION] = {"booking": booking.pk, "url": url}
    return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)


@editor_required
@require_POST
def guest_link_off(request: TenantRequest, booking_id: int) -> HttpResponse:
    booking = _booking(request, booking_id)
    if guest_link_revoke(booking=booking, now=timezone.now(), actor=request.user):
        messages.success(request, "The guest page link is off; the guest's link now shows “not found”.")
    return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)


def new_guest_link(request: HttpRequest, booking: Booking) -> str:
    """The link just made for this booking, once (popped from the session); "" otherwise."""
    fresh = request.session.get(NEW_LINK_SESSION)
    if isinstance(fresh, dict) and fresh.get("booking") == booking.pk:
        del request.session[NEW_LINK_SESSION]
        return str(fresh.get("url") or "")
    return ""
