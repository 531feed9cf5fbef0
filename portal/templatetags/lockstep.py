"""Small display helpers for Lockstep's pages: times as people read them (`local`, `clock`, `ago`), the
activity feed's words (`said`, `engine_words`, `command_words`) and a code's status label."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from locks.models import AccessCode, Activity, CodeStatus, LockCommand
from portal import activity_words, times

register = template.Library()

MOTION_STATUSES = (CodeStatus.SETTING, CodeStatus.REMOVING)
SCHEDULED_ON_LOCK = "Scheduled on the lock"


@register.filter
def in_motion(code: AccessCode) -> bool:
    """A code is in motion while a command for it is on its way, or it is due and not yet picked up.
    A preloaded code (on the lock, waiting for its window) has settled: the lock enforces the rest."""
    if code.status in MOTION_STATUSES:
        return True
    return (
        code.status == CodeStatus.UNSET
        and not code.is_scheduled_on_device
        and code.program_at is not None
        and code.program_at <= timezone.now()
    )


@register.filter
def status_label(code: AccessCode) -> str:
    """The chip's words: a preloaded code is not "Unset" to anyone reading the page."""
    if code.status == CodeStatus.UNSET and code.is_scheduled_on_device:
        return SCHEDULED_ON_LOCK
    return code.get_status_display()


@register.filter
def status_class(code: AccessCode) -> str:
    if code.status == CodeStatus.UNSET and code.is_scheduled_on_device:
        return "scheduled"
    return code.status


@register.filter
def local(moment: datetime | None, tz_name: str) -> str:
    """"Tue Jul 1, 15:00 EDT": the one way a time is shown, in `tz_name` (the property's or tenant's)."""
    return times.local_time(moment, tz_name)


@register.filter
def clock(moment: datetime | None, tz_name: str) -> str:
    """"15:00:12 EDT": the time of day only, beside a full `local` time of the same day."""
    return times.clock_time(moment, tz_name)


@register.filter
def ago(moment: datetime | None) -> str:
    """"just now", "12 min ago", "in 3 h"."""
    return times.ago(moment)


@register.filter
def said(activity: Activity, tz_name: str) -> str:
    return activity_words.activity_sentence(activity, tz_name)


@register.filter
def engine_words(activity: Activity) -> list[tuple[str, str]]:
    return activity_words.activity_details(activity)


@register.filter
def command_words(command: LockCommand) -> str:
    return activity_words.command_sentence(command)


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


@register.filter
def masked(pin: str) -> str:
    return "•" * len(pin) if pin else "—"
