"""Times as people read them (DESIGN §7): one format, in the property's zone (tenant-wide lists: the
tenant's), with the zone's abbreviation; and short relative hints ("in 3 h", "just now").

Pages (the `local` and `ago` template filters), alert emails and the activity words all format through
here, so a time never reaches a person in UTC or ISO form unless their zone is UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

JUST_NOW = timedelta(seconds=45)


def zone(tz_name: str | None) -> ZoneInfo:
    """The named zone; an unknown or empty name reads as UTC rather than failing a page."""
    try:
        return ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: datetime | None, tz_name: str | None, *, now: datetime | None = None) -> str:
    """"Tue Jul 1, 15:00 EDT" (the year too when it is not this year's), or "" for no time."""
    if moment is None:
        return ""
    here = moment.astimezone(zone(tz_name))
    this_year = (now or timezone.now()).astimezone(here.tzinfo).year
    day = f"{here:%a %b} {here.day}" + (f" {here.year}" if here.year != this_year else "")
    return f"{day}, {here:%H:%M} {here:%Z}"


def clock_time(moment: datetime | None, tz_name: str | None) -> str:
    """Only the time of day with its zone, "15:00:12 EDT", for a second time on the same day."""
    if moment is None:
        return ""
    here = moment.astimezone(zone(tz_name))
    return f"{here:%H:%M:%S %Z}"


def ago(moment: datetime | None, *, now: datetime | None = None) -> str:
    """A short relative hint: "just now", "12 min ago", "in 3 h", "2 d ago"."""
    if moment is None:
        return ""
    delta = moment - (now or timezone.now())
    seconds = abs(delta.total_seconds())
    if seconds < JUST_NOW.total_seconds():
        return "just now"
    if seconds < 3600:
        amount = f"{max(1, round(seconds / 60))} min"
    elif seconds < 48 * 3600:
        amount = f"{round(seconds / 3600)} h"
    else:
        amount = f"{round(seconds / 86400)} d"
    return f"in {amount}" if delta.total_seconds() > 0 else f"{amount} ago"


def parse_moment(value: object) -> datetime | None:
    """A datetime kept in Activity.data (ISO text, as JSON stores it), or None."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("UTC"))
