"""New PIN for a guest who knows the old one (issue 13): bob opens the dialog from the booking page, reads
what will happen (the PIN the guest was told and when, the new PIN going on beside it, when the guest will
be told), confirms, and sees the old code kept until the guest is told."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from locks.models import AccessCode, CodeStatus, Verification
from portal.models import Message, MessageChannel, MessageKind, MessageStatus

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_bob_previews_and_gives_a_told_guest_a_new_pin_beside_the_old_one(page, live_server, world, login,
                                                                           screenshot):
    booking = world.booking
    AccessCode.objects.filter(pk=world.code.pk).update(status=CodeStatus.SET, verification=Verification.VENDOR_ACK,
                                                       guest_notified=True)
    told_at = timezone.now() - timedelta(days=1)
    Message.objects.create(tenant=world.seaside, booking=booking, kind=MessageKind.CODE_DELIVERY,
                           channel=MessageChannel.EMAIL, status=MessageStatus.SENT, sent_at=told_at,
                           recipient="ana@example.test", created_at=told_at)

    login(page, "bob")
    page.goto(f"{live_server.url}/t/seaside/bookings/{booking.pk}/")
    page.get_by_role("button", name="New PIN…").click()

    plan = page.locator("#new-pin-plan")
    expect(plan).to_contain_text("The guest was told 483920", timeout=15_000)
    expect(plan).to_contain_text("(by email)")
    expect(plan).to_contain_text("beside 483920, which keeps working meanwhile")
    new_pin = plan.locator("code.bigpin").inner_text()
    assert new_pin != "483920" and len(new_pin) >= 4
    screenshot(page, "new-pin-preview")

    page.get_by_role("button", name="Give the new PIN").click()
    expect(page.get_by_text("The guest is told it by message once every door holds it")).to_be_visible(
        timeout=15_000)
    expect(page.get_by_text("replaced by a new PIN: keeps working until the guest is told it")).to_be_visible()
    replacement = AccessCode.objects.get(replaces=world.code)
    assert replacement.pin == new_pin
    world.code.refresh_from_db()
    assert world.code.status == CodeStatus.SET and world.code.pin == "483920"
