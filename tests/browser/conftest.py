"""Playwright against Debian's Chromium and pytest-django's live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make from that
# thread (driving the simulator, checking rows) are ordinary synchronous code, so allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def login(live_server):
    def log_in(page, username: str, password: str = "pw") -> None:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()

    return log_in


@pytest.fixture
def login_with_second_factor(live_server, login):
    """Sign in and set up an authenticator the way an admin does (admins need one for provider accounts,
    API keys and members), computing the code as the phone's app would."""
    import base64

    from django_otp.oath import totp

    def log_in(page, username: str, password: str = "pw") -> None:
        login(page, username, password)
        page.goto(f"{live_server.url}/account/two-factor/setup/")
        secret = page.locator("#totp-secret").inner_text()
        page.fill("#id_code", f"{totp(base64.b32decode(secret)):06d}")
        page.click("button[type=submit]")
        page.get_by_role("link", name="I have saved them — continue").click()
        page.wait_for_load_state()

    return log_in
