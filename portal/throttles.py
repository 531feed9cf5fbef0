"""PIN reveal throttle (DESIGN §9): each user, and each API key, may see ``PIN_REVEALS_PER_MINUTE`` PINs
per minute across the pages and the API; the next is refused with 429 and ``Retry-After``, and the first
refusal of a burst mails the tenant's admins (portal/alerts.py) and leaves an Activity row.

The window opens at a caller's first reveal and lasts a minute. The count is an atomic ``cache.incr``
(Redis in production), so parallel requests cannot slip past the limit, and exactly one request per
window sees ``limit + 1``: that one raises the alert.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from portal.http import TenantRequest
from portal.models import Tenant

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RevealDecision:
    allowed: bool
    retry_after: int = 0  # seconds until the window closes, when refused


def _spend(key: str, *, window: int, now: datetime) -> tuple[int, float]:
    """One more use of ``key``'s budget in its current window: (uses so far, when the window opened)."""
    ts = now.timestamp()
    start_key = f"{key}:start"
    cache.add(start_key, ts, timeout=window)
    start = cache.get(start_key, ts)
    count_key = f"{key}:{start}"
    cache.add(count_key, 0, timeout=window)
    try:
        count = cache.incr(count_key)
    except ValueError:  # the window closed between add and incr: this is the first of a new one
        cache.set(count_key, 1, timeout=window)
        count = 1
    return count, start


def budget_claim(*, key: str, limit: int, window: int, now: datetime) -> RevealDecision:
    """Spend one of ``limit`` uses per ``window`` seconds of ``key`` (e.g. ``"guest-page:ip:<address>"``)."""
    count, start = _spend(key, window=window, now=now)
    if count <= limit:
        return RevealDecision(allowed=True)
    return RevealDecision(allowed=False, retry_after=max(1, math.ceil(start + window - now.timestamp())))


def pin_reveal_claim(
    *, tenant: Tenant, who: str, label: str, actor: User | None, now: datetime
) -> RevealDecision:
    """Spend one reveal of ``who``'s budget (``"user:<id>"`` or ``"key:<id>"``); ``label`` names them in
    the alert."""
    limit = settings.PIN_REVEALS_PER_MINUTE
    ts = now.timestamp()
    count, start = _spend(f"pin-reveal:{who}", window=WINDOW_SECONDS, now=now)
    if count <= limit:
        return RevealDecision(allowed=True)
    if count == limit + 1:
        from portal.alerts import pin_reveal_burst_alert  # alerts import the engine; keep this module light

        pin_reveal_burst_alert(tenant=tenant, label=label, actor=actor, limit=limit, now=now)
    return RevealDecision(allowed=False, retry_after=max(1, math.ceil(start + WINDOW_SECONDS - ts)))


def pin_reveal_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For page views that show a PIN (``code_id`` in the URL): spend the signed-in user's budget first,
    answer 429 with a readable message when it is spent, and never let a response be cached."""

    @wraps(view)
    def wrapped(request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        decision = pin_reveal_claim(
            tenant=request.tenant,
            who=f"user:{user.pk}",
            label=user.get_username(),
            actor=user if isinstance(user, User) else None,
            now=timezone.now(),
        )
        if decision.allowed:
            response = view(request, *args, **kwargs)
        else:
            # htmx swaps this into the PIN's slot (base.html lets 429s swap); without JS it is a page.
            template = "portal/pin_throttled.html#slot" if getattr(request, "htmx", False) else "portal/pin_throttled.html"
            context = {"code_id": kwargs.get("code_id"), "retry_after": decision.retry_after}
            response = render(request, template, context, status=429)
            response["Retry-After"] = str(decision.retry_after)
        add_never_cache_headers(response)
        return response

    return wrapped
