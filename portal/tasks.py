"""django-q2 entry points for the integrations: thin, idempotent, each calls one service."""

from __future__ import annotations

from django.utils import timezone

from portal.alerts import alerts_send, digest_send
from portal.feeds import feeds_import_all
from portal.messages import messages_send_due


def import_feeds() -> int:
    """Every 15 minutes: every property's iCal feed. Returns how many feeds failed."""
    return sum(1 for result in feeds_import_all(now=timezone.now()) if result.error)


def send_alerts() -> int:
    """Every few minutes: mail admins and staff about new urgent problems. Returns mails sent."""
    return alerts_send(now=timezone.now())


def send_daily_digest() -> int:
    """Once a day: one summary mail per tenant with open problems. Returns mails sent."""
    return digest_send(now=timezone.now())


def send_messages() -> str:
    """Every minute: guest code messages due, sent only when every door has confirmed its code (DESIGN §4)."""
    report = messages_send_due(now=timezone.now())
    return (f"sent {len(report.sent)}, held {len(report.held)}, backup codes sent {len(report.backups)}, "
            f"escalated {len(report.escalated)}")
