"""The Content-Security-Policy in a real Chromium: the dashboard and a lock page load, HTMX actions swap
their parts, and the browser reports no violation (it logs each one to the console)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _watch_for_violations(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    return seen


def test_the_dashboard_and_a_lock_page_pass_the_policy_with_htmx(page, live_server, world, login):
    violations = _watch_for_violations(page)
    login(page, "alice")

    response = page.goto(f"{live_server.url}/t/seaside/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#attention-h")).to_be_visible()
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False

    page.goto(f"{live_server.url}/t/seaside/locks/{world.lock.pk}/")
    expect(page.locator("h1")).to_contain_text("Dune front")
    with page.expect_response(lambda r: "/act/reconcile/" in r.url):
        page.click("button:has-text('Check the lock')")  # hx-post, swaps <main>
    expect(page.locator("main")).to_contain_text("Dune front")

    page.goto(f"{live_server.url}/t/seaside/bookings/{world.booking.pk}/")
    page.click(f"#pin-{world.code.pk} button")  # the PIN reveal, hx-post into its slot
    expect(page.locator(f"#pin-{world.code.pk}")).to_contain_text("483920")

    assert violations == []


def test_the_policy_is_enforced(page, live_server, world, login):
    # The check above is only worth something if the browser would report a breach.
    violations = _watch_for_violations(page)
    login(page, "alice")
    page.goto(f"{live_server.url}/t/seaside/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=\"https://example.invalid/x.png\">')")
    page.wait_for_timeout(300)
    assert violations, "an image from another origin should have been refused"


def test_a_refused_reveal_shows_its_message_in_the_pin_slot(page, live_server, world, login, settings):
    settings.PIN_REVEALS_PER_MINUTE = 0  # the very first reveal is one too many
    violations = _watch_for_violations(page)
    login(page, "bob")
    page.goto(f"{live_server.url}/t/seaside/bookings/{world.booking.pk}/")
    page.click(f"#pin-{world.code.pk} button")
    expect(page.locator(f"#pin-{world.code.pk}")).to_contain_text("Too many PIN reveals")
    assert "483920" not in page.content()
    assert violations == []


def test_the_api_docs_render_under_their_policy(page, live_server, world, login):
    violations = _watch_for_violations(page)
    login(page, "alice")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .title")).to_contain_text("Lockstep API", timeout=10_000)
    assert violations == []
