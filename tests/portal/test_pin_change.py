"""Changing a PIN the guest knows: make before break (issue 13, acceptance 2; DESIGN §4 "PINs").

Once a guest has been told a PIN, New PIN puts the new PIN on every door beside the old one (which keeps
working), tells the guest only once every door holds it, and removes the old one only after that. A guest
not told yet simply gets the new PIN in place; a door with no slot for a second code is changed in place
and the guest is still told only once it holds the new PIN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from locks import actions, tasks
from locks.models import AccessCode, Activity, CodeStatus, CommandAction, LockCommand
from portal import message_delivery
from portal.guest_views import guest_doors
from portal.messages import messages_send_due
from portal.models import Message, MessageKind, MessageStatus
from portal.services import booking_create, booking_update
from providers.models import SimulatedDevice
from providers.simulator import PROFILES, simulator_advance, simulator_device_create
from tests import factories

pytestmark = pytest.mark.django_db

CHECK_IN = datetime(2030, 6, 5, 15, 0, tzinfo=UTC)
CHECK_OUT = CHECK_IN + timedelta(days=3)
T0 = CHECK_IN - timedelta(hours=3)  # booked late: past the send offset, the front door preloads at once


def _lock(tenant, prop, account, profile, name, **requirements):
    lock = factories.LockFactory(
        tenant=tenant, property=prop, provider_account=account, vendor_device_id=f"sim-{profile}", name=name,
        requirements={**PROFILES[profile].requirements, "simulator_profile": profile, **requirements},
        native_scheduling=PROFILES[profile].native_scheduling, pin_readable=PROFILES[profile].pin_readable,
    )
    simulator_device_create(account=account, device_id=lock.vendor_device_id, profile=profile)
    return lock


class Stay:
    """Ana's stay on a property with a Seam-like front door and a SmartThings-like back door, run by the
    engine's tasks, the simulated cloud and the minute's message work, as the scheduler would run them."""

    def __init__(self, traveller, capture, **back_requirements):
        self.traveller, self.capture = traveller, capture
        tenant = factories.TenantFactory()
        self.account = factories.ProviderAccountFactory(tenant=tenant, credentials={"seed": 3},
                                                        webhook_secret="s3cret")
        prop = factories.PropertyFactory(tenant=tenant, name="Dune Cottage")
        self.front = _lock(tenant, prop, self.account, "seam", "Front door")
        self.back = _lock(tenant, prop, self.account, "smartthings", "Back door", **back_requirements)
        with capture(execute=True):
            self.booking = booking_create(tenant=tenant, property=prop, guest_name="Ana Costa", check_in=CHECK_IN,
                                          check_out=CHECK_OUT, guest_email="ana@example.com")
        self.now = T0

    def run_until(self, moment, *, every=timedelta(minutes=1), stop=None):
        while self.now < moment:
            self.now = min(self.now + every, moment)
            self.traveller.move_to(self.now)
            with self.capture(execute=True):
                tasks.tick()
                simulator_advance(account=self.account, now=self.now)
                tasks.tick()
                messages_send_due(now=self.now)
            if stop is not None and stop():
                return

    def held(self, lock) -> set[str]:
        """The PINs the simulated lock really holds (set, or scheduled to open at its start)."""
        device = SimulatedDevice.objects.get(account=self.account, device_id=lock.vendor_device_id)
        return {item["pin"] for item in device.codes.values() if item["status"] in ("set", "scheduled")}

    def code(self, lock, **filters) -> AccessCode:
        return AccessCode.objects.filter(booking=self.booking, lock=lock, **filters).latest("id")

    def told(self):
        """Run until the guest has been told their codes (the just-in-time back door holds the message until it
        has its code, shortly before check-in)."""
        self.run_until(CHECK_IN, every=timedelta(minutes=10))
        assert [m.kind for m in Message.objects.filter(status=MessageStatus.SENT)] == [MessageKind.CODE_DELIVERY]
        codes = list(AccessCode.objects.filter(booking=self.booking))
        assert len(codes) == 2 and all(code.guest_notified for code in codes)
        return codes[0].pin


@pytest.fixture
def stay(django_capture_on_commit_callbacks):
    with time_machine.travel(T0, tick=False) as traveller:
        yield lambda **requirements: Stay(traveller, django_capture_on_commit_callbacks, **requirements)


@pytest.fixture
def doors_at_send(monkeypatch):
    """What each simulated door held at the moment each message went out (kind → [{door: pins}])."""
    seen: list[tuple[str, dict[str, set[str]]]] = []
    real = message_delivery._send

    def send(message, subject, body):
        devices = {device.device_id: {item["pin"] for item in device.codes.values()
                                      if item["status"] in ("set", "scheduled")}
                   for device in SimulatedDevice.objects.all()}
        seen.append((message.kind, devices))
        return real(message, subject, body)

    monkeypatch.setattr(message_delivery, "_send", send)
    return seen


def test_a_told_guests_new_pin_is_on_both_doors_before_they_are_told_and_the_old_goes_only_after(
    stay, doors_at_send
):
    ana = stay()
    old_pin = ana.told()
    old_front, old_back = ana.code(ana.front), ana.code(ana.back)
    assert ana.held(ana.front) == ana.held(ana.back) == {old_pin}

    new_front = actions.code_regenerate_pin(code=old_front, actor=None, now=ana.now)

    new_back = ana.code(ana.back)
    new_pin = new_front.pin
    assert new_pin != old_pin and new_back.pin == new_pin  # one PIN for both doors, as before
    assert (new_front.replaces_id, new_back.replaces_id) == (old_front.pk, old_back.pk)
    old_front.refresh_from_db()
    assert old_front.status == CodeStatus.SET and old_front.pin == old_pin  # untouched: it keeps working

    changed = lambda: Message.objects.filter(kind=MessageKind.CODE_CHANGED, status=MessageStatus.SENT).exists()  # noqa: E731
    ana.run_until(ana.now + timedelta(hours=2), stop=changed)
    assert changed()

    [(kind, at_send)] = doors_at_send[1:]
    assert kind == MessageKind.CODE_CHANGED
    # Both doors held the new PIN when the guest was told it, and the old one still worked on both.
    assert at_send == {"sim-seam": {old_pin, new_pin}, "sim-smartthings": {old_pin, new_pin}}
    [message] = Message.objects.filter(kind=MessageKind.CODE_CHANGED)
    [email] = [m for m in mail.outbox if "Front door: " + new_pin in m.body]
    assert "Back door: " + new_pin in email.body and old_pin not in email.body
    # The old codes' removal was asked for only once the guest had been told.
    deletes = LockCommand.objects.filter(access_code__in=[old_front, old_back], action=CommandAction.DELETE)
    assert deletes.count() == 2 and all(command.created_at >= message.sent_at for command in deletes)

    ana.run_until(ana.now + timedelta(hours=1), every=timedelta(minutes=5))
    assert ana.held(ana.front) == ana.held(ana.back) == {new_pin}
    old_front.refresh_from_db()
    old_back.refresh_from_db()
    assert (old_front.status, old_back.status) == (CodeStatus.REMOVED, CodeStatus.REMOVED)
    assert {d.pin for d in guest_doors(ana.booking)} == {new_pin}
    assert Message.objects.filter(kind=MessageKind.CODE_CHANGED).count() == 1  # told once


def test_while_the_new_pin_is_on_its_way_the_guest_page_shows_the_pin_that_works(stay):
    ana = stay()
    old_pin = ana.told()

    actions.code_regenerate_pin(code=ana.code(ana.front), actor=None, now=ana.now)

    assert {door.pin for door in guest_doors(ana.booking)} == {old_pin}
    assert not Message.objects.filter(kind=MessageKind.CODE_CHANGED, status=MessageStatus.SENT).exists()


def test_a_guest_not_told_yet_gets_the_new_pin_in_place_and_hears_it_with_their_code_message(stay):
    ana = stay()
    ana.run_until(T0 + timedelta(minutes=10))  # the front door holds it; the back door's turn has not come
    front = ana.code(ana.front)
    assert front.is_scheduled_on_device and not front.guest_notified

    new = actions.code_regenerate_pin(code=front, actor=None, now=ana.now)

    assert new.pk == front.pk and AccessCode.objects.filter(booking=ana.booking).count() == 2
    assert new.pin_changed_at is None
    ana.run_until(CHECK_IN, every=timedelta(minutes=10))
    assert [m.kind for m in Message.objects.filter(status=MessageStatus.SENT)] == [MessageKind.CODE_DELIVERY]
    assert ana.held(ana.front) == ana.held(ana.back) == {new.pin}


def test_a_door_with_no_slot_for_a_second_code_changes_in_place_and_the_guest_is_told_once_it_holds_it(
    stay, doors_at_send
):
    ana = stay(max_active_codes=1)  # the back door holds one code at a time
    old_pin = ana.told()
    old_back = ana.code(ana.back)

    actions.code_regenerate_pin(code=ana.code(ana.front), actor=None, now=ana.now)

    new_back = ana.code(ana.back)
    assert new_back.pk == old_back.pk and new_back.pin != old_pin and new_back.pin_changed_at == ana.now
    new_front = ana.code(ana.front)
    assert new_front.replaces_id is not None and new_front.pin == new_back.pin
    ana.run_until(ana.now + timedelta(hours=2),
                  stop=lambda: Message.objects.filter(kind=MessageKind.CODE_CHANGED, status="sent").exists())

    [(kind, at_send)] = doors_at_send[1:]
    assert kind == MessageKind.CODE_CHANGED
    assert new_back.pin in at_send["sim-smartthings"] and at_send["sim-seam"] >= {old_pin, new_back.pin}


def test_new_pin_again_before_the_guest_is_told_changes_the_pin_on_its_way_not_the_one_they_know(stay):
    ana = stay()
    old_pin = ana.told()
    old_front = ana.code(ana.front)
    first = actions.code_regenerate_pin(code=old_front, actor=None, now=ana.now)

    second = actions.code_regenerate_pin(code=old_front, actor=None, now=ana.now)  # pressed on the old row

    assert second.pk == first.pk and second.pin not in (first.pin, old_pin)
    assert AccessCode.objects.filter(booking=ana.booking).count() == 4  # two doors × (known + new)
    old_front.refresh_from_db()
    assert old_front.pin == old_pin and old_front.status == CodeStatus.SET


def test_a_stay_moved_while_its_new_pin_is_on_its_way_moves_both_codes(stay):
    ana = stay()
    ana.told()
    actions.code_regenerate_pin(code=ana.code(ana.front), actor=None, now=ana.now)

    with ana.capture(execute=True):
        booking_update(booking=ana.booking, check_out=CHECK_OUT + timedelta(days=1), actor=None)

    ends = set(AccessCode.objects.filter(booking=ana.booking).values_list("ends_at", flat=True))
    assert len(ends) == 1 and ends.pop() > CHECK_OUT + timedelta(days=1) - timedelta(minutes=1)


def test_a_change_message_that_failed_is_not_made_again_every_minute_and_the_old_pin_keeps_working(
    stay, monkeypatch
):
    ana = stay()
    old_pin = ana.told()
    actions.code_regenerate_pin(code=ana.code(ana.front), actor=None, now=ana.now)

    def refuse(message, subject, body):
        raise OSError("connection refused")

    monkeypatch.setattr(message_delivery, "_send", refuse)
    ana.run_until(ana.now + timedelta(minutes=30))

    assert list(Message.objects.filter(kind=MessageKind.CODE_CHANGED).values_list("status", flat=True)) == ["failed"]
    assert old_pin in ana.held(ana.front) and old_pin in ana.held(ana.back)
    assert Activity.objects.filter(verb="message.failed").count() == 1


# --------------------------------------------------------------------------- the New PIN dialog


def _staff(client, ana):
    from portal.models import Role

    bob = factories.UserFactory(username="bob-pins")
    factories.MembershipFactory(user=bob, tenant=ana.booking.tenant, role=Role.STAFF)
    client.force_login(bob)
    return bob


def test_the_new_pin_dialog_previews_what_happens_and_confirming_gives_the_pin_it_showed(stay, client):
    from django.urls import reverse

    ana = stay()
    old_pin = ana.told()
    bob = _staff(client, ana)
    slug, front = ana.booking.tenant.slug, ana.code(ana.front)

    page = client.post(reverse("locks:code_new_pin_preview", args=[slug, front.pk])).content.decode()

    plan = page[page.index('id="new-pin-plan"'):]
    new_pin = plan.split('name="pin" value="')[1].split('"')[0]
    assert f"The guest was told <code>{old_pin}</code>" in plan and "(by email)" in plan
    assert f"goes on Front door and Back door beside <code>{old_pin}</code>" in plan
    assert f"will be told <code>{new_pin}</code> once it is on both doors" in plan and new_pin != old_pin
    assert Activity.objects.filter(verb="pin.revealed", actor=bob, access_code=front).count() == 1
    assert AccessCode.objects.filter(booking=ana.booking).count() == 2  # a preview changes nothing

    done = client.post(reverse("locks:code_action", args=[slug, front.pk, "new_pin"]),
                       {"pin": new_pin, "next": reverse("booking_detail", args=[slug, ana.booking.pk])}, follow=True)

    assert {code.pin for code in AccessCode.objects.filter(booking=ana.booking, replaces__isnull=False)} == {new_pin}
    html = done.content.decode()
    assert "The guest is told it by message once every door holds it" in html
    assert html.count("replaced by a new PIN: keeps working until the guest is told it") == 2


def test_a_pin_taken_between_the_preview_and_the_confirmation_changes_nothing(stay, client):
    from django.urls import reverse

    ana = stay()
    old_pin = ana.told()
    _staff(client, ana)
    slug, front = ana.booking.tenant.slug, ana.code(ana.front)

    response = client.post(reverse("locks:code_action", args=[slug, front.pk, "new_pin"]), {"pin": old_pin},
                           follow=True)

    assert "That PIN cannot go on" in response.content.decode()
    assert AccessCode.objects.filter(booking=ana.booking).count() == 2
