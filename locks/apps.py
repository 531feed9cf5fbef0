from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

# Every background schedule of the project, in one table (DESIGN §6), created at migrate time, idempotently:
# (task, schedule type, minutes). Schedule types are django-q2's: "I" every N minutes, "D" daily.
SCHEDULES: tuple[tuple[str, str, int | None], ...] = (
    ("locks.tasks.tick", "I", 1),
    ("locks.tasks.sweep", "I", 1),
    ("locks.tasks.reconcile_due", "I", 5),
    ("locks.tasks.health", "I", 10),
    ("locks.tasks.refresh_tokens", "I", 10),
    ("portal.tasks.import_feeds", "I", 15),
    ("portal.tasks.send_alerts", "I", 5),
    ("portal.tasks.send_messages", "I", 1),
    ("portal.tasks.send_daily_digest", "D", None),
    # Simulated vendor clouds catch up with the wall clock.
    ("providers.simulator_tasks.advance_all", "I", 1),
)


def ensure_schedules(**kwargs: Any) -> None:
    from django_q.models import Schedule

    for func, schedule_type, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=func,
            defaults={"func": func, "schedule_type": schedule_type, "minutes": minutes, "repeats": -1},
        )


class LocksConfig(AppConfig):
    name = "locks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="locks.ensure_schedules")
        # Adapters get fresh OAuth tokens through the engine's locked path (providers cannot import us).
        from locks.tokens import EngineTokenKeeper
        from providers.oauth import token_keeper_register

        token_keeper_register(EngineTokenKeeper())
