"""Query parameters, parsed once and strictly: anything the database or Python's datetime cannot hold is a
400 in the API's error shape (portal/api/errors.py), never a 500 from deep in a query."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from portal.query_params import parse_id


def query_id(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_id(raw)
    if value is None:
        raise ValidationError({name: "Expected an id."})
    return value


def query_text(request: Request, name: str) -> str:
    """Free text; PostgreSQL refuses NUL characters in strings, so they are a 400 here."""
    value = request.query_params.get(name, "")
    if "\x00" in value:
        raise ValidationError({name: "Must not contain NUL characters."})
    return value.strip()


def query_choice(request: Request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if not value:
        return None
    if value not in choices:
        raise ValidationError({name: f"Choose one of: {', '.join(choices)}."})
    return value


def query_day_bounds(request: Request, name: str) -> tuple[datetime, datetime] | None:
    """The start and end of the day in ``name`` (the current zone), or None when absent. Days whose start
    or end does not fit a datetime (around years 1 and 9999) are a 400."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        day = serializers.DateField().to_internal_value(raw)
    except serializers.ValidationError as exc:
        raise ValidationError({name: exc.detail}) from exc
    try:
        start = timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())
        # The database compares in UTC: the shifted values must exist too.
        return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError({name: "Choose a day between years 1 and 9998."}) from exc
