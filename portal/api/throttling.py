"""API rate limits (DESIGN §9): one budget per API key, one per session user, counted in the Django cache.

DRF's ``SimpleRateThrottle`` does the counting and the ``Retry-After``; these only say whose budget a
request spends. PIN reveals also spend the caller's reveal budget (portal/throttles.py). Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, read on each request (DRF
binds them at import time, which would ignore a changed setting).
"""

from __future__ import annotations

from typing import Any, cast

from django.utils import timezone
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from portal.api.access import ApiAccess
from portal.api.authentication import ApiKeyPrincipal
from portal.throttles import pin_reveal_claim


class _ScopedRateThrottle(SimpleRateThrottle):
    scope: str  # every subclass names its budget

    def get_rate(self) -> str | None:
        # The stub types rates as numbers; DRF's rates are "N/period" strings (or None).
        rates = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)
        return rates.get(self.scope)


class ApiKeyRateThrottle(_ScopedRateThrottle):
    """Per key id: every machine integration has its own budget, whichever address it calls from."""

    scope = "api_key"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.user, ApiKeyPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.api_key.pk}


class SessionUserRateThrottle(_ScopedRateThrottle):
    """Per signed-in user, for the browsable docs and scripts riding a session."""

    scope = "api_user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if isinstance(user, ApiKeyPrincipal) or not getattr(user, "is_authenticated", False):
            return None
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


def pin_reveal_spend(access: ApiAccess) -> None:
    """Spend one PIN reveal of the caller's budget (shared with the pages for session users); a spent
    budget is a 429 with ``Retry-After`` in the API's error shape."""
    if access.api_key is not None:
        who, label, actor = f"key:{access.api_key.pk}", f"API key “{access.api_key.name}”", None
    else:
        user = access.user
        assert user is not None  # resolve_access: a caller without an API key is a signed-in user
        who, label, actor = f"user:{user.pk}", user.get_username(), user
    decision = pin_reveal_claim(tenant=access.tenant, who=who, label=label, actor=actor, now=timezone.now())
    if not decision.allowed:
        raise Throttled(wait=decision.retry_after, detail="Too many PIN reveals; try again later.")
