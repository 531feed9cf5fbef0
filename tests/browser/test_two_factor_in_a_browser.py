"""An admin sets up two-factor sign-in in a real Chromium: sent to set it up on the way to provider
accounts, scans (reads) the key, types the app's code, keeps the recovery codes, and gets through; the
page breaks no Content-Security-Policy rule (the QR code is markup, not a data: image)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_sets_up_an_authenticator_before_opening_provider_accounts(page, live_server, world, login,
                                                                        screenshot):
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    login(page, "alice")

    page.goto(f"{live_server.url}/t/seaside/providers/")

    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    screenshot(page, "two-factor-setup")
    code = totp(base64.b32decode(secret))  # what the phone's app would show
    page.fill("#id_code", f"{code:06d}")
    page.click("button[type=submit]")

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    screenshot(page, "two-factor-recovery-codes")
    page.get_by_role("link", name="I have saved them — continue").click()
    expect(page).to_have_url(f"{live_server.url}/t/seaside/providers/")
    expect(page.get_by_role("heading", name="Demo simulator")).to_have_count(0)  # the list, not a detail page
    assert violations == []
