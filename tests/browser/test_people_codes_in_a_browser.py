"""A cleaner's code on every door of a property, in a real Chromium at phone size: bob gives Maria an
ongoing code from the property page and watches it reach both locks without a reload."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from locks.models import AccessCode, CodeStatus
from locks.tick import tick
from providers.simulator import simulator_advance
from tests import factories

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _drive_engine_until(world, done, *, seconds: float = 40) -> None:
    """No worker runs in tests: play the dispatcher, the scheduler and the simulated vendor cloud from the
    test thread while the page polls, until `done()` holds."""
    from locks.dispatch import dispatch_lock

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = timezone.now()
        for lock_id in AccessCode.objects.values_list("lock_id", flat=True).distinct():
            dispatch_lock(lock_id=lock_id, now=now)
        tick(now=now)
        simulator_advance(account=world.account, now=now + timedelta(seconds=1))
        if done():
            return
        time.sleep(0.5)
    raise AssertionError("the engine did not get there in time")


def test_bob_gives_the_cleaner_one_code_on_every_door_and_sees_it_reach_the_locks(
    page, live_server, world, login, screenshot
):
    back = factories.LockFactory(tenant=world.seaside, property=world.dune, provider_account=world.account,
                                 name="Dune back")
    page.set_viewport_size(PHONE)
    login(page, "bob")
    page.goto(f"{live_server.url}/t/seaside/properties/{world.dune.pk}/")
    page.click("text=Add a code for a person")
    expect(page.locator("h1")).to_contain_text("every lock of Dune Cottage")
    page.select_option("#id_purpose", "cleaner")
    page.fill("#id_holder_name", "Maria Lopes")
    screenshot(page, "phone-people-code-new")
    page.click("text=Create code")

    expect(page.locator("#people-codes")).to_contain_text("Maria Lopes")
    codes = list(AccessCode.objects.filter(holder_name="Maria Lopes").order_by("lock_id"))
    assert [c.lock_id for c in codes] == [world.lock.pk, back.pk]
    assert codes[0].pin == codes[1].pin  # one PIN for both doors
    chips = [page.locator(f"#chip-{code.pk}") for code in codes]
    for chip in chips:
        expect(chip).not_to_have_attribute("data-status", "set")
    url_before = page.url
    _drive_engine_until(world, lambda: AccessCode.objects.filter(
        holder_name="Maria Lopes", status=CodeStatus.SET).count() == 2)
    # the chips poll every 3 s: they turn to "Set" on this very page, with no reload
    for chip in chips:
        expect(chip).to_have_attribute("data-status", "set", timeout=10_000)
        expect(chip).to_have_text("Set")
    assert page.url == url_before
    screenshot(page, "phone-people-codes-set")
