"""django-q2 entry points for providers: thin, take ids, call a service."""

from __future__ import annotations

from django.utils import timezone

from providers import services


def process_event(event_id: int) -> str:
    return services.event_process(event_id=event_id, now=timezone.now())
