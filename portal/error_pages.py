"""Styled 403 and 404 pages inside the layout, with DEBUG on or off (DESIGN §7).

Django answers a 404 with its technical page (the site's URL list, settings) whenever DEBUG is on,
whatever `handler404` says; the demo runs with DEBUG on, so `FriendlyNotFoundMiddleware` swaps that page
for ours. Its 403 already goes through `handler403` in both modes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# A sentence only Django's technical 404 page contains (django/views/templates/technical_404.html).
TECHNICAL_404_MARK = b"<code>DEBUG = True</code>"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The exception's text is ours or Django's ("No Booking matches the given query."): never shown.
    return render(request, "404.html", status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


class FriendlyNotFoundMiddleware:
    """Outermost: replaces Django's DEBUG 404 page by the site's own; every other response passes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and not response.streaming
            and TECHNICAL_404_MARK in response.content
        ):
            return not_found(request)
        return response


class ClientErrorsWithoutTraceback(logging.Filter):
    """A 4xx is the client's doing (a forbidden page, a missing row): one line says it, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
