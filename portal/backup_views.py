"""Backup codes from the booking page: staff hand the guest a backup code already on the door (locks.backup).
Editors only; another tenant's ids are 404."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from locks.backup import backup_code_hand_out
from locks.models import Lock
from portal.http import TenantRequest
from portal.models import Booking
from portal.permissions import editor_required, visible_properties
from portal.tenancy import get_for_tenant


@editor_required
@require_POST
def backup_hand_out(request: TenantRequest, booking_id: int, lock_id: int) -> HttpResponse:
    booking = get_for_tenant(Booking.objects.filter(property__in=visible_properties(request)).select_related(
        "property"), request.tenant, pk=booking_id)
    lock = get_for_tenant(Lock.objects.filter(property_id=booking.property_id), request.tenant, pk=lock_id)
    try:
        backup_code_hand_out(booking=booking, lock=lock, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Backup code on {lock.name} handed to {booking.guest_name}; reveal its PIN "
                         f"below and tell the guest. It is removed after the stay.")
    return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)
