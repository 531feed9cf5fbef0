"""PIN reveals are throttled per user and per API key (DESIGN §9): 30 a minute, then 429 + Retry-After,
and the first refusal of a burst mails the tenant's admins once and leaves an Activity row."""

from __future__ import annotations

from django.core import mail
from django.test import override_settings
from django.urls import reverse

from locks.models import Activity
from tests.conftest import client_for, verified_client_for

LIMIT = 30


def _reveal_url(world) -> str:
    return reverse("locks:code_reveal", args=["seaside", world.code.pk])


def _reveal_many(client, url: str, times: int, **extra) -> list[int]:
    return [client.post(url, **extra).status_code for _ in range(times)]


def test_it_refuses_the_31st_reveal_in_a_minute_with_429_and_retry_after(client, world):
    client = client_for(client, world.bob)
    url = _reveal_url(world)
    assert _reveal_many(client, url, LIMIT) == [200] * LIMIT

    response = client.post(url)

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "483920" not in response.content.decode()
    assert "Too many PIN reveals" in response.content.decode()
    # refused reveals are not reveals: only the 30 that showed a PIN are in the log
    assert Activity.objects.filter(verb="pin.revealed").count() == LIMIT
    client.logout()  # each user has their own budget
    assert client_for(client, world.alice).post(url).status_code == 200


def test_a_burst_of_reveals_mails_the_admins_once_and_is_recorded(client, world):
    client = client_for(client, world.bob)
    url = _reveal_url(world)
    _reveal_many(client, url, LIMIT + 5)

    [message] = mail.outbox
    assert message.to == ["alice@example.com"]  # the admins, not the staff member doing the revealing
    assert "bob" in message.body
    assert "483920" not in message.body
    [row] = Activity.objects.filter(verb="alert.pin_reveal_burst")
    assert row.tenant_id == world.seaside.pk
    assert row.actor == world.bob


def test_the_htmx_path_gets_a_readable_message_in_place_of_the_pin(client, world):
    client = client_for(client, world.bob)
    url = _reveal_url(world)
    _reveal_many(client, url, LIMIT, HTTP_HX_REQUEST="true")

    response = client.post(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 429
    assert "Retry-After" in response
    body = response.content.decode()
    assert f'id="pin-{world.code.pk}"' in body  # it replaces the PIN slot it was aimed at
    assert "Too many PIN reveals" in body


def test_owners_are_throttled_on_the_owner_portal_reveal_too(client, world):
    client = client_for(client, world.olive)
    statuses = _reveal_many(client, _reveal_url(world), LIMIT + 1)
    assert statuses[:LIMIT] == [200] * LIMIT
    assert statuses[LIMIT] == 429


@override_settings(PIN_REVEALS_PER_MINUTE=2)
def test_the_limit_is_a_setting(client, world):
    assert _reveal_many(client_for(client, world.bob), _reveal_url(world), 3) == [200, 200, 429]


def test_a_page_reveal_is_never_cached(client, world):
    response = client_for(client, world.bob).post(_reveal_url(world))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_new_api_key_page_is_never_cached(client, world):
    client = verified_client_for(client, world.alice)
    url = reverse("api_key_list", args=["seaside"])
    response = client.post(url, {"name": "PMS", "role": "staff"}, follow=True)
    assert "lsk_" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
