"""The pages that matter, driven in a real Chromium: a code going live without a reload, a playbook
action, the owner portal, and tenancy."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from locks.models import AccessCode, CodeStatus, IssueStatus
from locks.tick import tick
from portal.models import Booking
from providers.simulator import simulator_advance

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _drive_engine_until(world, done, *, seconds: float = 40) -> None:
    """No worker runs in tests: play the scheduler and the simulated vendor cloud from the test thread
    while the page polls, until `done()` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = timezone.now()
        tick(now=now)
        simulator_advance(account=world.account, now=now + timedelta(seconds=1))
        if done():
            return
        time.sleep(0.5)
    raise AssertionError("the engine did not get there in time")


def test_bob_creates_a_booking_and_watches_its_code_go_live(page, live_server, world, login, screenshot):
    login(page, "bob")
    expect(page.locator("h1")).to_contain_text("Seaside Stays")
    page.click("text=Bookings")
    page.click("text=New booking")
    tz = ZoneInfo(world.dune.timezone)
    check_in = (timezone.now() + timedelta(hours=1)).astimezone(tz)
    check_out = check_in + timedelta(hours=20)
    page.select_option("#id_property", str(world.dune.pk))
    page.fill("#id_guest_name", "Rosa Delgado")
    page.fill("#id_check_in_date", check_in.date().isoformat())
    page.fill("#id_check_in_time", check_in.strftime("%H:%M"))
    page.fill("#id_check_out_date", check_out.date().isoformat())
    page.fill("#id_check_out_time", check_out.strftime("%H:%M"))
    page.click("text=Create booking")

    expect(page.locator("h1")).to_contain_text("Rosa Delgado")
    booking = Booking.objects.get(guest_name="Rosa Delgado")
    code = AccessCode.objects.get(booking=booking)
    chip = page.locator(f"#chip-{code.pk}")
    expect(chip).not_to_have_attribute("data-status", "set")
    url_before = page.url
    _drive_engine_until(
        world, lambda: AccessCode.objects.filter(pk=code.pk, status=CodeStatus.SET).exists()
    )
    # the chip polls every 3 s: it turns to "set" on this very page, with no reload
    expect(chip).to_have_attribute("data-status", "set", timeout=10_000)
    expect(chip).to_have_text("Set")
    assert chip.get_attribute("hx-trigger") is None  # settled: it stopped polling
    assert page.url == url_before

    page.click(f"#pin-{code.pk} button")
    code.refresh_from_db()
    expect(page.locator(f"#pin-{code.pk}")).to_contain_text(code.pin)
    screenshot(page, "booking")
    page.click("text=Dashboard")
    expect(page.locator("#attention-h")).to_be_visible()
    screenshot(page, "dashboard")
    page.goto(f"{live_server.url}/t/seaside/properties/{world.dune.pk}/")
    expect(page.locator("svg.timeline")).to_contain_text("Rosa Delgado")
    screenshot(page, "property")


def test_bob_reads_a_playbook_and_one_click_changes_the_lock_page(page, live_server, world, login, screenshot):
    world.lock.online = False
    world.lock.battery_level = 0.12
    world.lock.save()
    login(page, "bob")
    page.goto(f"{live_server.url}/t/seaside/locks/{world.lock.pk}/")
    issue = page.locator(f"#issue-{world.issue.pk}")
    expect(issue).to_contain_text("What it means.")
    expect(issue).to_contain_text("What to do, in order")
    screenshot(page, "troubleshooting")
    issue.locator("button", has_text="Dismiss").click()
    expect(page.locator("main")).to_contain_text("No open issues on this lock.")
    expect(page.locator("main")).to_contain_text("Issue dismissed.")
    world.issue.refresh_from_db()
    assert world.issue.status == IssueStatus.DISMISSED


def test_olive_sees_her_property_and_not_the_others(page, live_server, world, login, screenshot):
    login(page, "olive")
    expect(page.locator("h1")).to_have_text("My properties")
    main = page.locator("main")
    expect(main).to_contain_text("Dune Cottage")
    expect(main).to_contain_text("Ana Costa")
    expect(main).not_to_contain_text("Harbor View Loft")
    expect(main).not_to_contain_text("Ben Okafor")
    expect(main.locator("text=Cancel booking")).to_have_count(0)
    page.click(f"#pin-{world.code.pk} button")
    expect(page.locator(f"#pin-{world.code.pk}")).to_contain_text("483920")
    screenshot(page, "owner")
    response = page.goto(f"{live_server.url}/t/seaside/properties/{world.harbor_view.pk}/")
    assert response.status == 404


def test_mallory_sees_none_of_it(page, live_server, world, login):
    login(page, "mallory")
    expect(page.locator("h1")).to_have_text("Harbor Homes")
    expect(page.locator("main")).not_to_contain_text("Dune")
    for path in ["/t/seaside/", f"/t/seaside/bookings/{world.booking.pk}/", f"/t/harbor/locks/{world.lock.pk}/"]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 404, path
        expect(page.locator("body")).not_to_contain_text("Ana Costa")
