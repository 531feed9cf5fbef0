"""API authentication: tenant API keys (Bearer) for machines, the session for the browsable docs.

Machines send ``Authorization: Bearer lsk_<prefix>_<secret>``; the key decides the tenant and role.
Browser sessions pick the tenant with the ``X-Lockstep-Tenant`` header or ``?tenant=<slug>`` (optional
when the user belongs to exactly one tenant); the user's membership decides the role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from portal.api.keys import api_key_authenticate
from portal.models import ApiKey


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """``request.user`` for key requests: authenticated, but not a Django user (never an Activity actor)."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}…"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the key as “Authorization: Bearer lsk_…”.")
        api_key = api_key_authenticate(raw_key=parts[1].decode("latin-1"), now=timezone.now())
        if api_key is None:
            # Same answer for a wrong, unknown and revoked key.
            raise AuthenticationFailed("Invalid or revoked API key.")
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "lsk_<prefix>_<secret>",
            "description": "A tenant API key, created by an admin under Settings → API keys.",
        }
