"""Guest messages on the booking page and in settings (issue 13): staff send and resend (refused with a
clear reason while a door has not confirmed the code), owners read, admins preview the templates on a
sample stay, and mallory gets 404 for every Seaside id."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from locks.models import AccessCode, CodeStatus
from portal.models import Message, MessageKind, MessageStatus, MessageTemplate, Property
from tests import factories
from tests.conftest import client_for

PIN = "483920"  # the world's code on Dune front


@pytest.fixture
def reachable(world):
    world.booking.guest_email = "ana@example.com"
    world.booking.save(update_fields=["guest_email"])
    return world


def _send_url(booking):
    return reverse("message_send_now", args=["seaside", booking.pk])


def _confirm(world):
    AccessCode.objects.filter(pk=world.code.pk).update(status=CodeStatus.SET)


def test_bob_s_send_now_is_refused_while_the_door_has_not_confirmed_the_code(client, reachable):
    client_for(client, reachable.bob)

    response = client.post(_send_url(reachable.booking), {"kind": "code_delivery"}, follow=True)

    page = response.content.decode()
    assert "Not sent: Dune front not confirmed" in page
    assert mail.outbox == [] and not Message.objects.filter(status=MessageStatus.SENT).exists()
    assert PIN not in page  # the refusal names the door, never the PIN


def test_bob_sends_the_codes_sees_the_status_and_resends(client, reachable):
    _confirm(reachable)
    client_for(client, reachable.bob)

    response = client.post(_send_url(reachable.booking), {"kind": "code_delivery"}, follow=True,
                           headers={"HX-Request": "true"})

    [sent] = mail.outbox
    assert f"Dune front: {PIN}" in sent.body
    message = Message.objects.get()
    assert message.status == MessageStatus.SENT and message.created_by == reachable.bob
    page = response.content.decode()
    assert f'id="message-{message.pk}"' in page and "chip-message-sent" in page and "Door codes" in page
    assert PIN not in message.body and "Dune front: ••••" in message.body
    assert AccessCode.objects.get(pk=reachable.code.pk).guest_notified

    client.post(reverse("message_resend", args=["seaside", reachable.booking.pk, message.pk]))

    assert len(mail.outbox) == 2 and Message.objects.filter(status=MessageStatus.SENT).count() == 2


def test_instructions_can_be_sent_before_the_codes_and_carry_no_pin(client, reachable):
    client_for(client, reachable.bob)

    client.post(_send_url(reachable.booking), {"kind": "instructions"})

    [sent] = mail.outbox
    assert PIN not in sent.body and "/g/" in sent.body
    assert Message.objects.get().kind == MessageKind.INSTRUCTIONS


def test_olive_reads_the_messages_but_cannot_send(client, reachable):
    _confirm(reachable)
    client_for(client, reachable.bob)
    client.post(_send_url(reachable.booking), {"kind": "code_delivery"})
    message = Message.objects.get()
    client_for(client, reachable.olive)

    page = client.get(reverse("booking_detail", args=["seaside", reachable.booking.pk])).content.decode()

    assert f'id="message-{message.pk}"' in page and "Send door codes now" not in page and "Resend" not in page
    assert client.post(_send_url(reachable.booking), {"kind": "code_delivery"}).status_code == 403
    assert client.post(reverse("message_resend", args=["seaside", reachable.booking.pk, message.pk])).status_code == 403
    assert len(mail.outbox) == 1


def test_mallory_gets_404_for_every_seaside_message_url(client, reachable):
    _confirm(reachable)
    client_for(client, reachable.bob)
    client.post(_send_url(reachable.booking), {"kind": "code_delivery"})
    message = Message.objects.get()
    harbor_booking = factories.BookingFactory(tenant=reachable.harbor, property=reachable.harbor_property,
                                              guest_email="x@example.com")
    client_for(client, reachable.mallory)

    urls = [
        _send_url(reachable.booking),
        reverse("message_resend", args=["seaside", reachable.booking.pk, message.pk]),
        reverse("message_send_now", args=["harbor", reachable.booking.pk]),
        reverse("message_resend", args=["harbor", reachable.booking.pk, message.pk]),
        reverse("message_resend", args=["harbor", harbor_booking.pk, message.pk]),
    ]
    for url in urls:
        assert client.post(url, {"kind": "code_delivery"}).status_code == 404, url
    assert client.get(reverse("message_templates", args=["seaside"])).status_code == 404
    assert len(mail.outbox) == 1


def test_alice_previews_the_messages_on_a_sample_stay_and_writes_a_template(client, world):
    client_for(client, world.alice)
    url = reverse("message_templates", args=["seaside"])

    page = client.get(url).content.decode()
    assert "Sam Sample" in page and "Front door: 482913" in page and "Ana Costa" not in page

    response = client.post(url, {"kind": "code_delivery", "channel": "email", "language": "pt",
                                 "subject": "Códigos", "body": "Olá {guest_name}: {doors}"})
    assert response.status_code == 302
    assert MessageTemplate.objects.get(tenant=world.seaside).language == "pt"
    page = client.get(url + "?language=pt").content.decode()
    assert "Olá Sam Sample: Front door: 482913" in page

    response = client.post(url, {"kind": "code_delivery", "channel": "sms", "language": "en", "body": "{pin}"})
    assert response.status_code == 200 and "Unknown placeholder: {pin}" in response.content.decode()
    response = client.post(url, {"kind": "code_delivery", "channel": "email", "language": "en",
                                 "subject": "Codes: {doors}", "body": "{doors}"})
    assert "Door codes go in the body" in response.content.decode()
    assert MessageTemplate.objects.count() == 1


def test_mallory_cannot_use_a_seaside_property_in_her_template(client, world):
    client_for(client, world.mallory)

    response = client.post(reverse("message_templates", args=["harbor"]), {
        "property": world.dune.pk, "kind": "code_delivery", "channel": "email", "language": "en", "body": "x"})

    assert response.status_code == 200 and not MessageTemplate.objects.exists()
    page = client.get(reverse("message_templates", args=["harbor"]) + f"?property={world.dune.pk}")
    assert "Dune Cottage" not in page.content.decode()


def test_a_bad_property_in_the_preview_address_shows_the_tenant_wide_words(client, world):
    client_for(client, world.alice)
    response = client.get(reverse("message_templates", args=["seaside"]) + "?property=abc&language=%00")
    assert response.status_code == 200 and "Sample Cottage" in response.content.decode()


def test_bob_cannot_open_the_template_settings(client, world):
    client_for(client, world.bob)
    assert client.get(reverse("message_templates", args=["seaside"])).status_code == 403


def test_bob_sets_the_property_s_message_offsets_and_the_second_must_come_later(client, world):
    client_for(client, world.bob)
    edit = reverse("property_edit", args=["seaside", world.dune.pk])
    base = {"checkin_time": "15:00", "checkout_time": "11:00", "before_minutes": "", "after_minutes": ""}

    response = client.post(edit, {**base, "message_offset_hours": "48", "message_second_offset_hours": "6"})
    assert response.status_code == 302
    dune = Property.objects.get(pk=world.dune.pk)
    assert (dune.message_offset_hours, dune.message_second_offset_hours) == (48, 6)

    response = client.post(edit, {**base, "message_offset_hours": "3", "message_second_offset_hours": "3"})
    assert response.status_code == 400 and "Choose fewer hours than for sending the codes." in response.content.decode()
    assert Property.objects.get(pk=world.dune.pk).message_offset_hours == 48


def test_send_now_refuses_a_kind_it_does_not_send_and_sends_nothing(client, reachable):
    from django.core import mail

    from portal.models import Message

    _confirm(reachable)
    client_for(client, reachable.bob)
    for kind in ("backup_code", "nonsense", ""):
        response = client.post(_send_url(reachable.booking), {"kind": kind}, follow=True)
        assert response.status_code == 200
        assert "That message cannot be sent from here." in response.content.decode()
    assert not Message.objects.exists() and mail.outbox == []
