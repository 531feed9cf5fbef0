from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_alert_schedules(**kwargs: Any) -> None:
    """Alert mails every 5 minutes and the daily digest, created at migrate time, idempotently (DESIGN §6).
    The iCal import is scheduled with the engine's tasks (locks/apps.py)."""
    from django_q.models import Schedule

    for func, defaults in (
        ("portal.tasks.send_alerts", {"schedule_type": Schedule.MINUTES, "minutes": 5}),
        ("portal.tasks.send_daily_digest", {"schedule_type": Schedule.DAILY, "minutes": None}),
    ):
        Schedule.objects.update_or_create(name=func, defaults={"func": func, "repeats": -1, **defaults})


class PortalConfig(AppConfig):
    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_alert_schedules, sender=self, dispatch_uid="portal.ensure_alert_schedules")
