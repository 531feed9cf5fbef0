"""A verified delivery that yields no event is counted on its account, shown on the account page and
alerted once a day, never silently dropped (DESIGN §4 "Outcomes arrive four ways"; issue "Truth under
fire" 12c). The vendor is SmartThings, its deliveries signed as the vendor signs them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from portal.alerts import alerts_send
from providers.models import ProviderAccount, Vendor, WebhookEvent
from tests import factories
from tests.conftest import verified_client_for
from tests.providers.test_smartthings import device_event, lifecycle_event, public_pem, signed_headers


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def account(world, app_key) -> ProviderAccount:
    return factories.ProviderAccountFactory(
        tenant=world.seaside, vendor=Vendor.SMARTTHINGS, name="Samsung home",
        credentials={"token": "st-token", "public_key": public_pem(app_key)},
    )


def deliver(client, account, app_key, payload: dict, django_capture_on_commit_callbacks):
    body = json.dumps(payload).encode()
    url = reverse("webhooks:receive", args=["smartthings", account.uuid])
    headers = signed_headers(body, app_key, path=url)
    del headers["X-Lockstep-Request-Path"], headers["Content-Type"]
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url, data=body, content_type="application/json", headers=headers)


# A shape nobody parses: verified, meaningless to us.
UNKNOWN_SHAPE = {"messageType": "DEVICE_EVENT", "payload": {"deviceId": "d-1", "value": "1 failed"}}


def test_it_counts_a_verified_delivery_that_yields_no_event(client, account, app_key,
                                                            django_capture_on_commit_callbacks):
    response = deliver(client, account, app_key, UNKNOWN_SHAPE, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    account.refresh_from_db()
    assert account.unparsed_deliveries == 1
    assert account.last_unparsed_at is not None
    assert WebhookEvent.objects.filter(provider_account=account).count() == 1  # kept, for the record

    again = deliver(client, account, app_key, UNKNOWN_SHAPE, django_capture_on_commit_callbacks)
    assert again.json()["duplicate"] is True
    account.refresh_from_db()
    assert account.unparsed_deliveries == 1  # a repeat of the same delivery is not counted twice


def test_it_does_not_count_a_delivery_it_understands(client, account, app_key,
                                                     django_capture_on_commit_callbacks):
    payload = lifecycle_event(device_event("ev-1", "lockCodes", "codeChanged", "2 set"))

    deliver(client, account, app_key, payload, django_capture_on_commit_callbacks)

    account.refresh_from_db()
    assert account.unparsed_deliveries == 0
    assert account.last_unparsed_at is None


def test_it_does_not_count_a_forged_delivery(client, account, django_capture_on_commit_callbacks):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = deliver(client, account, forger, UNKNOWN_SHAPE, django_capture_on_commit_callbacks)

    assert response.status_code == 401
    account.refresh_from_db()
    assert account.unparsed_deliveries == 0


def test_the_account_page_shows_the_unparsed_deliveries(client, world, account, app_key,
                                                         django_capture_on_commit_callbacks):
    deliver(client, account, app_key, UNKNOWN_SHAPE, django_capture_on_commit_callbacks)
    verified_client_for(client, world.alice)

    page = client.get(reverse("providers:account_detail", args=["seaside", account.uuid]))

    assert page.status_code == 200
    body = page.content.decode()
    assert "1 delivery Lockstep could not read" in body


def test_the_account_page_says_nothing_when_every_delivery_was_read(client, world, account):
    verified_client_for(client, world.alice)

    page = client.get(reverse("providers:account_detail", args=["seaside", account.uuid]))

    assert "could not read" not in page.content.decode()


def test_it_alerts_once_a_day_per_account(client, world, account, app_key, django_capture_on_commit_callbacks):
    deliver(client, account, app_key, UNKNOWN_SHAPE, django_capture_on_commit_callbacks)
    now = timezone.now()

    alerts_send(now=now)
    assert len(mail.outbox) == 1
    assert "Samsung home" in mail.outbox[0].body
    assert "could not read" in mail.outbox[0].body

    deliver(client, account, app_key, {**UNKNOWN_SHAPE, "n": 2}, django_capture_on_commit_callbacks)
    alerts_send(now=now + timedelta(hours=2))
    assert len([m for m in mail.outbox if "Samsung home" in m.body]) == 1  # once a day per account

    with time_machine.travel(now + timedelta(days=1, hours=1), tick=False):
        deliver(client, account, app_key, {**UNKNOWN_SHAPE, "n": 3}, django_capture_on_commit_callbacks)
    alerts_send(now=now + timedelta(days=1, hours=1))
    assert len([m for m in mail.outbox if "Samsung home" in m.body]) == 2


def test_it_does_not_alert_again_without_a_new_unparsed_delivery(client, world, account, app_key,
                                                                 django_capture_on_commit_callbacks):
    deliver(client, account, app_key, UNKNOWN_SHAPE, django_capture_on_commit_callbacks)
    now = timezone.now()
    alerts_send(now=now)

    alerts_send(now=now + timedelta(days=2))

    assert [m for m in mail.outbox if "Samsung home" in m.body] == mail.outbox[:1]
