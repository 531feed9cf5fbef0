"""Booking services: every write to a booking goes through here (pages, API, feeds, CSV, seed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from locks.models import Activity
from portal.models import Booking, BookingSource, BookingStatus, Property, Tenant


def _validate_dates(check_in: datetime, check_out: datetime) -> None:
    if check_in.tzinfo is None or check_out.tzinfo is None:
        raise ValidationError({"check_in": "Dates must carry a time zone."})
    if check_out <= check_in:
        raise ValidationError({"check_out": "Check-out must be after check-in."})


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
    actor: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> Booking:
    if property.tenant_id != tenant.pk:
        raise ValidationError({"property": "Unknown property."})
    _validate_dates(check_in, check_out)
    booking = Booking.objects.create(
        tenant=tenant,
        property=property,
        guest_name=guest_name,
        guest_phone=guest_phone,
        guest_email=guest_email,
        check_in=check_in,
        check_out=check_out,
        source=source,
        external_ref=external_ref,
        notes=notes,
    )
    _record(booking, actor, "booking.created", f"Booking for {guest_name} created ({source})")
    return booking


def _record(booking: Booking, actor: AbstractBaseUser | None, verb: str, message: str, **data: Any) -> None:
    from django.utils import timezone

    Activity.objects.create(
        tenant_id=booking.tenant_id,
        booking=booking,
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb,
        message=message,
        data=data,
        created_at=timezone.now(),
    )


__all__ = ["BookingStatus", "booking_create"]
