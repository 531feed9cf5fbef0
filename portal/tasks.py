"""django-q2 entry points for the integrations: thin, idempotent, each calls one service."""

from __future__ import annotations

from django.utils import timezone

from portal.alerts import alerts_send, digest_send
from portal.feeds import feeds_import_all


def import_feeds() -> int:
    """Every 15 minutes: every property's iCal feed. Returns how many feeds failed."""
    return sum(1 for result in feeds_import_all(now=timezone.now()) if result.error)


def send_alerts() -> int:
    """Every few minutes: mail admins and staff about new urgent problems. Returns mails sent."""
    return alerts_send(now=timezone.now())


def send_daily_digest() -> int:
    """Once a day: one summary mail per tenant with open problems. Returns mails sent."""
    return digest_send(now=timezone.now())
