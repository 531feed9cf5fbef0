"""The API is throttled per key and per session user, and PIN reveals share one budget per caller with the
pages (DESIGN §9): 429 with Retry-After in the API's JSON error shape."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import override_settings

from tests.conftest import client_for

LIMIT = 30


def test_api_reveals_are_throttled_per_key(api, keys, world):
    bob, alice = api(keys.bob), api(keys.alice)
    url = f"/api/v1/access-codes/{world.code.pk}/"
    assert [bob.get(url).status_code for _ in range(LIMIT)] == [200] * LIMIT

    response = bob.get(url)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "throttled"
    assert "pin" not in response.json()
    assert len(mail.outbox) == 1
    assert alice.get(url).status_code == 200  # another key has its own budget


@pytest.mark.parametrize("path", ["regenerate/", "check-pin/"])
def test_api_endpoints_that_give_away_pins_share_the_reveal_budget(api, keys, world, path):
    bob = api(keys.bob)
    for _ in range(LIMIT):
        bob.get(f"/api/v1/access-codes/{world.code.pk}/")
    if path == "check-pin/":
        # "is this PIN in use on the door?" answers with a PIN, one guess at a time
        response = bob.post(f"/api/v1/locks/{world.lock.pk}/check-pin/", {"pin": "135790"}, format="json")
    else:
        response = bob.post(f"/api/v1/access-codes/{world.code.pk}/{path}")
    assert response.status_code == 429


def test_an_api_reveal_is_never_cached(api, keys, world):
    response = api(keys.bob).get(f"/api/v1/access-codes/{world.code.pk}/")
    assert response.json()["pin"] == "483920"
    assert "no-store" in response["Cache-Control"]


SMALL_RATES = {"api_key": "3/min", "api_user": "3/min"}


def _rates(**rates: str):
    from django.conf import settings

    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), **rates}})


def test_it_throttles_each_api_key_on_its_own(api, keys):
    with _rates(**SMALL_RATES):
        key_a, key_b = api(keys.alice), api(keys.bob)
        assert [key_a.get("/api/v1/properties/").status_code for _ in range(3)] == [200] * 3

        refused = key_a.get("/api/v1/properties/")

        assert refused.status_code == 429
        assert int(refused["Retry-After"]) > 0
        assert refused.json() == {"detail": refused.json()["detail"], "code": "throttled", "fields": {}}
        assert key_b.get("/api/v1/properties/").status_code == 200


def test_it_throttles_each_session_user_on_their_own(client, world):
    with _rates(**SMALL_RATES):
        bob = client_for(client, world.bob)
        assert [bob.get("/api/v1/properties/").status_code for _ in range(3)] == [200] * 3
        assert bob.get("/api/v1/properties/").status_code == 429
        client.logout()
        assert client_for(client, world.alice).get("/api/v1/properties/?tenant=seaside").status_code == 200


def test_the_default_rates_stop_a_flood(api, keys):
    # The review's 150 calls in a second all answered 200.
    key = api(keys.bob)
    statuses = {key.get("/api/v1/properties/").status_code for _ in range(150)}
    assert 429 in statuses
