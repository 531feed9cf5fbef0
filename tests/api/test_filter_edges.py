"""Query parameters at the edges of what Python and the database can hold answer 400 in the API's error
shape, never 500 (year 9999 plus a day, ids past a bigint, non-ASCII digits, NUL characters that
PostgreSQL refuses). Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

HUGE = "9" * 30

CASES = [
    ("/api/v1/bookings/?to=9999-12-31", "to"),
    (f"/api/v1/bookings/?property={HUGE}", "property"),
    ("/api/v1/bookings/?property=9223372036854775808", "property"),  # one past the largest bigint
    ("/api/v1/bookings/?property=%C2%B2", "property"),  # "²" passes str.isdigit()
    ("/api/v1/bookings/?search=a%00b", "search"),
    (f"/api/v1/access-codes/?lock={HUGE}", "lock"),
    (f"/api/v1/access-codes/?booking={HUGE}", "booking"),
    ("/api/v1/access-codes/?lock=%C2%B2", "lock"),
    ("/api/v1/access-codes/?status=a%00b", "status"),
    (f"/api/v1/commands/?access_code={HUGE}", "access_code"),
    ("/api/v1/commands/?state=a%00b", "state"),
    (f"/api/v1/issues/?lock={HUGE}", "lock"),
]


@pytest.mark.parametrize(("url", "field"), CASES)
def test_it_answers_400_for_a_filter_out_of_range(api, keys, url, field):
    client = api(keys.bob)
    client.raise_request_exception = False

    response = client.get(url)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["fields"]


def test_a_session_callers_tenant_with_a_nul_is_a_400(client, world):
    client.force_login(world.bob)
    client.raise_request_exception = False
    response = client.get("/api/v1/properties/?tenant=sea%00side")
    assert response.status_code == 400
    assert "tenant" in response.json()["fields"]
