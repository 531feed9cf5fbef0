"""One JSON error shape for every API failure, with per-field messages.

    {"detail": "Invalid input.", "code": "invalid", "fields": {"check_out": ["Check-out must be …"]}}

Django ValidationErrors raised by services become 400s here, so views can call services directly.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


def _as_lists(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        out: list[str] = []
        for item in value:
            out.extend(_as_lists(item))
        return out
    if isinstance(value, dict):
        return [f"{key}: {msg}" for key, item in value.items() for msg in _as_lists(item)]
    return [str(value)]


def django_validation_error_to_drf(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({field: list(msgs) for field, msgs in exc.message_dict.items()})
    return exceptions.ValidationError({"non_field_errors": exc.messages})


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


def _engine_exception_to_drf(exc: Exception) -> Exception:
    # Imported here: the engine imports portal models, and this module loads with the URLconf.
    from locks.pins import PinRejected
    from locks.transitions import TransitionError

    if isinstance(exc, PinRejected):
        return exceptions.ValidationError({"pin": exc.errors})
    if isinstance(exc, TransitionError):
        return Conflict(str(exc))
    return exc


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = django_validation_error_to_drf(exc)
    exc = _engine_exception_to_drf(exc)
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django answer 500 and log it
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(data, dict):
            fields = {key: _as_lists(value) for key, value in data.items()}
        else:
            fields = {"non_field_errors": _as_lists(data)}
        body = {"detail": "Invalid input.", "code": "invalid", "fields": fields}
    else:
        detail = data.get("detail", "") if isinstance(data, dict) else data
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = {"detail": str(detail), "code": str(code), "fields": {}}
    response.data = body
    return response
