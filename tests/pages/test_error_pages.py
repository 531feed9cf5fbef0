"""403 and 404 are pages of the site (inside the layout), with DEBUG on (the demo) or off, and never
Django's technical page with the list of the site's URLs; a 403 is one log line, not a traceback."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings
from django.urls import reverse


def _not_found_urls(world) -> list[str]:
    return [
        "/no/such/page/",  # matches no URL
        reverse("dashboard", args=["harbor"]),  # a tenant alice is not in (the middleware's 404)
        reverse("booking_detail", args=["seaside", 999_999]),  # a missing row (the view's 404)
    ]


@pytest.mark.parametrize("debug", [False, True])
def test_it_shows_its_own_404_page_inside_the_layout(client, world, debug):
    client.force_login(world.alice)
    with override_settings(DEBUG=debug):
        for url in _not_found_urls(world):
            response = client.get(url)
            html = response.content.decode()
            assert response.status_code == 404, url
            assert "<h1>Not found</h1>" in html and 'class="topbar"' in html, url
            assert "DEBUG = True" not in html and "URLconf" not in html and "django-admin/" not in html, url


@pytest.mark.parametrize("debug", [False, True])
def test_it_shows_its_own_403_page_inside_the_layout(client, world, debug):
    client.force_login(world.olive)
    with override_settings(DEBUG=debug):
        response = client.get(reverse("booking_create", args=["seaside"]))
    html = response.content.decode()
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in html and "Seaside Stays" in html and 'class="mainnav"' in html
    assert "Traceback" not in html


def test_it_keeps_a_views_own_404_page(client, world):
    with override_settings(DEBUG=True):
        response = client.get(reverse("invitation_accept", args=["no-such-token"]))
    assert response.status_code == 404
    assert "<h1>Not found</h1>" not in response.content.decode()


@pytest.mark.parametrize("debug", [False, True])
def test_a_403_is_one_log_line_without_a_traceback(client, world, debug):
    """Every configured handler that would print a django.request record is counted (pytest's own capture
    handlers are not): one line, no exc_info."""
    logger = logging.getLogger("django.request")
    chain: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        chain.extend(h for h in current.handlers if not type(h).__module__.startswith("_pytest"))
        current = current.parent if current.propagate else None
    assert chain, "django.request reaches no handler"
    emitted: list[logging.LogRecord] = []
    originals = {}
    for handler in chain:
        originals[handler] = handler.emit
        handler.emit = lambda record, h=handler: emitted.append(record)  # type: ignore[method-assign]
    try:
        client.force_login(world.olive)
        with override_settings(DEBUG=debug):
            assert client.get(reverse("booking_create", args=["seaside"])).status_code == 403
    finally:
        for handler, emit in originals.items():
            handler.emit = emit  # type: ignore[method-assign]
    forbidden = [r for r in emitted if getattr(r, "status_code", None) == 403]
    assert len(forbidden) == 1
    assert forbidden[0].exc_info is None and "Forbidden" in forbidden[0].getMessage()
