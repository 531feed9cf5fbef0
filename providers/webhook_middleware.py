"""Webhook deliveries skip the portal's middleware (DESIGN §12: intake at least half a bare view's throughput).

A vendor's delivery has no session, user, tenant, CSRF token or page: sessions, authentication, the second
factor, tenancy, messages, htmx, CSP and axes only cost it time (a third of a delivery's Python under
gunicorn). Placed right after Django's SecurityMiddleware, so HTTPS redirects and security headers still
apply; the view keeps its own checks (POST only, signature before anything is stored).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver

from providers.webhook_views import receive

PREFIX = "/webhooks/"  # where portal/urls.py mounts WEBHOOK_URLCONF
WEBHOOK_URLCONF = "providers.webhook_urls"


class WebhookShortcut:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(PREFIX):
            try:
                # Against the webhook routes alone, not the project's (a fifth of a delivery's Python went
                # to trying the portal's patterns first).
                match = get_resolver(WEBHOOK_URLCONF).resolve(request.path_info[len(PREFIX) - 1:])
            except Resolver404:
                return self.get_response(request)
            if match.func is receive:
                request.resolver_match = match
                return receive(request, *match.args, **match.kwargs)
        return self.get_response(request)
