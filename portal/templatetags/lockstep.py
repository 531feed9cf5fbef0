"""Small display helpers for Lockstep's pages."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django import template
from django.utils import timezone

from locks.models import AccessCode, CodeStatus

register = template.Library()

MOTION_STATUSES = (CodeStatus.SETTING, CodeStatus.REMOVING)


@register.filter
def in_motion(code: AccessCode) -> bool:
    """A code is in motion while a command for it is on its way, or it is due and not yet picked up."""
    if code.status in MOTION_STATUSES:
        return True
    return code.status == CodeStatus.UNSET and code.program_at is not None and code.program_at <= timezone.now()


@register.filter
def local(moment: datetime | None, tz_name: str) -> datetime | None:
    """The wall-clock time at `tz_name` (a property's), for display. Returned naive on purpose: the `date`
    filter would otherwise convert an aware value back to the request's time zone."""
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(tz_name)).replace(tzinfo=None)


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


@register.filter
def masked(pin: str) -> str:
    return "•" * len(pin) if pin else "—"
