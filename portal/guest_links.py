"""The guest page link (DESIGN §7, §9): one per booking, `/g/<token>/`, no login.

The token is 32 random bytes (`secrets.token_urlsafe`, 256 bits); only its SHA-256 is stored on the
booking, so the link is shown once, when it is made (like an API key), and a database dump opens no
guest page. Making a new link replaces the old one (the old link stops working); turning it off clears
it. A link works from when it is made until a day after check-out, and never for a cancelled stay.

`guest_link_issue(booking)` is what guest messages call to put a link in a message: it makes a new link
each time, so the newest message carries the link that works.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from locks.activity import activity_record
from portal.models import Booking, BookingStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

TOKEN_BYTES = 32
# The link keeps working this long after check-out (the guest may look back at the instructions).
VALID_AFTER_CHECKOUT = timedelta(days=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def guest_link_url(token: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("guest_page", args=[token])


@transaction.atomic
def guest_link_create(
    *, booking: Booking, now: datetime, actor: AbstractBaseUser | AnonymousUser | None = None
) -> str:
    """A new link for the booking (any older one stops working). Returns its full URL, shown once."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    Booking.objects.filter(pk=booking.pk).update(guest_link_hash=token_digest(token), guest_link_created_at=now)
    booking.guest_link_hash, booking.guest_link_created_at = token_digest(token), now
    activity_record(tenant_id=booking.tenant_id, verb="guest.link_created", booking_id=booking.pk, actor=actor,
                    now=now, message=f"New guest page link for {booking.guest_name}")
    return guest_link_url(token)


def guest_link_issue(booking: Booking) -> str:
    """The link to put in a guest message (a new one: only the newest link works)."""
    return guest_link_create(booking=booking, now=timezone.now())


@transaction.atomic
def guest_link_revoke(
    *, booking: Booking, now: datetime, actor: AbstractBaseUser | AnonymousUser | None = None
) -> bool:
    if not Booking.objects.filter(pk=booking.pk).exclude(guest_link_hash="").update(
        guest_link_hash="", guest_link_created_at=None
    ):
        return False
    booking.guest_link_hash, booking.guest_link_created_at = "", None
    activity_record(tenant_id=booking.tenant_id, verb="guest.link_revoked", booking_id=booking.pk, actor=actor,
                    now=now, message=f"Guest page link for {booking.guest_name} turned off")
    return True


def guest_link_expires_at(booking: Booking) -> datetime:
    return booking.check_out + VALID_AFTER_CHECKOUT


def booking_for_guest_token(token: str, *, now: datetime) -> Booking | None:
    """The booking the token opens now, or None (unknown, replaced, turned off, expired or cancelled):
    every one of these answers the same."""
    if not token or len(token) > 100:
        return None
    booking = (Booking.objects.select_related("property", "tenant")
               .filter(guest_link_hash=token_digest(token)).first())
    if booking is None or booking.status != BookingStatus.CONFIRMED or now >= guest_link_expires_at(booking):
        return None
    return booking
