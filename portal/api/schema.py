"""OpenAPI generation: every API operation documents the one error shape (portal/api/errors.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class, so this does not shadow Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per-field messages (input errors only; otherwise empty).",
    )


ERROR_STATUSES = {
    "400": "Invalid input; `fields` says what and why.",
    "401": "Missing, invalid or revoked API key.",
    "403": "The key or role may not do this (owners are read-only).",
    "404": "No such object in your tenant (another tenant's id looks the same as a missing one).",
}
WRITE_ERROR_STATUSES = {"409": "The object is not in a state that allows this."}


class TenantApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        errors = dict(ERROR_STATUSES)
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            errors.update(WRITE_ERROR_STATUSES)
        for status, description in errors.items():
            if status not in responses:
                response = self._get_response_for_code(ErrorSerializer, status)
                responses[status] = {**response, "description": description}
        return responses
