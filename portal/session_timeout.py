"""Admins' sessions end after a spell of inactivity (DESIGN §9).

An admin's session can change members, vendor credentials and API keys, so one left open on a shared
front-desk screen must not stay usable for the whole session age. Everyone else keeps the normal
session age (SESSION_COOKIE_AGE).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from portal.http import PortalRequest
from portal.models import Role

LAST_SEEN = "last_seen"
# Write the stamp at most this often, so a busy session is not saved on every request.
STAMP_EVERY_SECONDS = 60


class AdminIdleTimeoutMiddleware:
    """Must come after TenantMiddleware, whose process_view sets request.membership."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PortalRequest) -> HttpResponse:
        now = time.time()
        last_seen = request.session.get(LAST_SEEN) if request.user.is_authenticated else None
        request.idle_seconds = None if last_seen is None else now - last_seen
        response = self.get_response(request)
        # Stamped after the view, so a request that logs in or out leaves the right state behind.
        if request.user.is_authenticated and (last_seen is None or now - last_seen >= STAMP_EVERY_SECONDS):
            request.session[LAST_SEEN] = now
        return response

    def process_view(
        self, request: PortalRequest, view_func: Callable, view_args: tuple, view_kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        idle = getattr(request, "idle_seconds", None)
        if idle is None or idle <= settings.SESSION_ADMIN_IDLE_MINUTES * 60:
            return None
        if not _holds_admin_power(request):
            return None
        logout(request)
        messages.info(request, "You were signed out after a while without activity. Sign in again.")
        return redirect_to_login(request.get_full_path())


def _holds_admin_power(request: PortalRequest) -> bool:
    """Admin of any tenant (the session carries that power onto every page), or Django-admin staff."""
    user = request.user
    if not user.is_authenticated:  # idle_seconds is only measured for signed-in sessions
        return False
    if user.is_staff or user.is_superuser:
        return True
    membership = getattr(request, "membership", None)
    if membership is not None and membership.is_admin:
        return True
    # Only reached for a session idle past the limit, so this query is rare.
    return user.memberships.filter(role=Role.ADMIN).exists()
