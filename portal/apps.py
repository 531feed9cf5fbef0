from __future__ import annotations

from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Background schedules (alerts, digest, feeds) are in the one table of locks/apps.py."""

    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"
