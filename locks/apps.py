from __future__ import annotations

import importlib
from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

# (task, minutes); created at migrate time, idempotently (DESIGN §6).
SCHEDULES: tuple[tuple[str, int], ...] = (
    ("locks.tasks.tick", 1),
    ("locks.tasks.sweep", 1),
    ("locks.tasks.reconcile_due", 5),
    ("locks.tasks.health", 10),
    ("portal.tasks.import_feeds", 15),
)


def _importable(dotted: str) -> bool:
    module_name, name = dotted.rsplit(".", 1)
    try:
        return callable(getattr(importlib.import_module(module_name), name, None))
    except ImportError:
        return False


def ensure_schedules(**kwargs: Any) -> None:
    from django_q.models import Schedule

    for func, minutes in SCHEDULES:
        if not _importable(func):
            continue  # e.g. portal.tasks.import_feeds before the feeds work lands
        Schedule.objects.update_or_create(
            name=func,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )


class LocksConfig(AppConfig):
    name = "locks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="locks.ensure_schedules")
