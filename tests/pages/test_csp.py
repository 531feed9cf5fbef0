"""Every page carries a Content-Security-Policy that HTMX pages pass (DESIGN §9): scripts and styles
from our own origin only, so the pages hold no inline script, style attribute or style element."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.conftest import client_for, verified_client_for

REQUIRED = {
    "default-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
}


def _policy(response) -> dict[str, str]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def _assert_strict(response) -> None:
    policy = _policy(response)
    for directive, value in REQUIRED.items():
        assert policy.get(directive) == value, (directive, policy)
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\sstyle=", html), "style attribute"
    assert "<style" not in html


def test_every_staff_page_carries_the_policy_and_passes_it(client, world, page_urls, editor_pages):
    client = verified_client_for(client, world.alice)  # members and API keys need her second factor
    extra = {
        "settings": reverse("settings", args=["seaside"]),
        "api_keys": reverse("api_key_list", args=["seaside"]),
        "members": reverse("settings_members", args=["seaside"]),
    }
    for name, url in {**page_urls, **editor_pages, **extra}.items():
        if name == "owner_home":
            continue
        response = client.get(url)
        assert response.status_code == 200, name
        _assert_strict(response)


def test_the_owner_portal_and_the_login_page_carry_the_policy(client, world, page_urls):
    _assert_strict(client.get(reverse("login")))
    _assert_strict(client_for(client, world.olive).get(page_urls["owner_home"]))


def test_htmx_is_told_not_to_inject_its_indicator_style(client, world, page_urls):
    html = client_for(client, world.alice).get(page_urls["dashboard"]).content.decode()
    assert '<meta name="htmx-config"' in html
    assert '"includeIndicatorStyles": false' in html


@pytest.mark.parametrize("status", [404, 429])
def test_error_and_refusal_responses_carry_the_policy_too(client, world, status):
    client = client_for(client, world.bob)
    if status == 404:
        response = client.get("/t/seaside/bookings/999999/")
    else:
        url = reverse("locks:code_reveal", args=["seaside", world.code.pk])
        for _ in range(31):
            response = client.post(url)
    assert response.status_code == status
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_the_api_docs_get_a_policy_that_still_forbids_inline_scripts(client, world):
    response = client_for(client, world.alice).get("/api/docs/")
    assert response.status_code == 200
    policy = _policy(response)
    assert "unsafe-inline" not in policy.get("script-src", policy["default-src"])
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "the Swagger UI init script must be a file"
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
