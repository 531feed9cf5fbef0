"""The guest page on a phone (issue 13, acceptance 5): bob makes the stay's link on the booking page; the
guest opens it on a phone-size screen, sees the front door's code (confirmed) and the back door "being set
up", and reports that the code does not work."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from locks.models import AccessCode, CodeStatus, IssueKind, LockIssue, Verification
from tests import factories

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_a_guest_opens_their_page_on_a_phone(page, browser, live_server, world, login, screenshot):
    dune = world.dune
    dune.guest_instructions = "The gate code is on the blue box. Parking: the first bay on the left."
    dune.save(update_fields=["guest_instructions"])
    AccessCode.objects.filter(pk=world.code.pk).update(status=CodeStatus.SET, verification=Verification.VENDOR_ACK)
    back = factories.LockFactory(tenant=world.seaside, property=dune, provider_account=world.account,
                                 name="Dune back")
    factories.AccessCodeFactory(tenant=world.seaside, lock=back, booking=world.booking, pin="739164",
                                status=CodeStatus.SETTING)

    login(page, "bob")
    page.goto(f"{live_server.url}/t/seaside/bookings/{world.booking.pk}/")
    page.get_by_role("button", name="Make a guest link").click()
    link = page.get_by_label("Guest page link").input_value()
    path = link[link.index("/g/"):]

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    guest = phone.new_page()
    guest.goto(f"{live_server.url}{path}")

    expect(guest.get_by_role("heading", name="Dune Cottage")).to_be_visible()
    expect(guest.locator(".guest-pin")).to_have_text("483920")
    expect(guest.get_by_text("Being set up")).to_be_visible()
    expect(guest.get_by_text("The gate code is on the blue box.")).to_be_visible()
    assert "739164" not in guest.content()
    width = guest.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    screenshot(guest, "guest-page-phone")

    guest.fill("#report", "The keypad blinks red")
    guest.get_by_role("button", name="My code doesn't work").click()
    expect(guest.get_by_role("status")).to_contain_text("your host has been told")
    screenshot(guest, "guest-page-phone-reported")
    phone.close()

    assert LockIssue.objects.filter(lock=world.lock, kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING).exists()
