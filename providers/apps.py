from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

SIMULATOR_SCHEDULE = "providers.simulator_tasks.advance_all"


def schedule_simulator(**kwargs: Any) -> None:
    """Every minute the worker lets simulated vendor clouds catch up (created once, idempotently)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SIMULATOR_SCHEDULE,
        defaults={"func": SIMULATOR_SCHEDULE, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )


class ProvidersConfig(AppConfig):
    name = "providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(schedule_simulator, sender=self, dispatch_uid="providers.schedule_simulator")
