"""People's codes over the API: POST /api/v1/access-codes/ for a cleaner, maintenance, owner or staff
code on a lock or on every lock of a property, PATCH to change it, DELETE to take it off the lock."""

from __future__ import annotations

from locks.models import AccessCode, CodeStatus, CommandAction, LockCommand
from tests import factories


def _people_codes():
    return AccessCode.objects.filter(booking__isnull=True)


def test_it_creates_a_code_on_every_lock_of_a_property_with_one_pin(api, keys, world):
    back = factories.LockFactory(tenant=world.seaside, property=world.dune, provider_account=world.account)
    response = api(keys.bob).post("/api/v1/access-codes/", {"purpose": "cleaner", "holder_name": "Maria",
                                                              "property": world.dune.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {row["lock"] for row in body} == {world.lock.pk, back.pk}
    assert body[0]["pin"] == body[1]["pin"] == _people_codes().first().pin
    assert {row["code_type"] for row in body} == {"ongoing"} and body[0]["holder_name"] == "Maria"
    assert all(row["status"] == CodeStatus.SETTING for row in body)


def test_it_creates_a_time_bound_code_on_one_lock(api, keys, world):
    response = api(keys.bob).post("/api/v1/access-codes/", {
        "purpose": "maintenance", "holder_name": "Plumber", "lock": world.lock.pk, "pin": "583920",
        "starts_at": "2031-03-10T09:00:00-04:00", "ends_at": "2031-03-10T17:00:00-04:00"}, format="json")
    assert response.status_code == 201, response.json()
    [code] = _people_codes()
    assert code.pin == "583920" and code.code_type == "time_bound" and code.status == CodeStatus.UNSET


def test_bad_input_is_a_400_and_saves_nothing(api, keys, world):
    client = api(keys.bob)
    for body, field in (
        ({"purpose": "cleaner", "holder_name": "M", "lock": world.lock.pk, "pin": "1234"}, "pin"),
        ({"purpose": "guest", "holder_name": "M", "lock": world.lock.pk}, "purpose"),
        ({"purpose": "cleaner", "holder_name": "M", "lock": world.lock.pk,
          "starts_at": "2031-03-10T09:00:00Z", "ends_at": "2031-03-09T09:00:00Z"}, "ends_at"),
        ({"purpose": "cleaner", "holder_name": "M", "lock": world.lock.pk, "starts_at": "2031-02-30T09:00:00Z",
          "ends_at": "2031-03-09T09:00:00Z"}, "starts_at"),
        ({"purpose": "cleaner", "holder_name": "M"}, "lock"),
    ):
        response = client.post("/api/v1/access-codes/", body, format="json")
        assert response.status_code == 400, body
        assert field in response.json()["fields"], response.json()
    assert not _people_codes().exists()


def test_another_tenants_lock_or_property_is_a_404(api, keys, world):
    client = api(keys.mallory)
    for target in ({"lock": world.lock.pk}, {"property": world.dune.pk}):
        response = client.post("/api/v1/access-codes/", {"purpose": "cleaner", "holder_name": "M", **target},
                               format="json")
        assert response.status_code == 404
    assert not _people_codes().exists()


def test_an_owner_key_cannot_create(api, keys, world):
    response = api(keys.olive).post("/api/v1/access-codes/", {"purpose": "owner", "holder_name": "Olive",
                                                                "lock": world.lock.pk}, format="json")
    assert response.status_code == 403
    assert not _people_codes().exists()


def test_it_changes_and_removes_a_persons_code_and_not_a_guests(api, keys, world):
    client = api(keys.bob)
    created = client.post("/api/v1/access-codes/", {"purpose": "staff", "holder_name": "Bob",
                                                     "lock": world.lock.pk}, format="json").json()[0]
    response = client.patch(f"/api/v1/access-codes/{created['id']}/", {"holder_name": "Bob Reyes"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["holder_name"] == "Bob Reyes"
    assert api(keys.mallory).delete(f"/api/v1/access-codes/{created['id']}/").status_code == 404
    assert client.delete(f"/api/v1/access-codes/{world.code.pk}/").status_code == 409

    code = AccessCode.objects.get(pk=created["id"])
    LockCommand.objects.filter(access_code=code).update(state="succeeded", sent_at=code.created_at)
    AccessCode.objects.filter(pk=code.pk).update(status=CodeStatus.SET, vendor_code_ref="ref-9")
    response = client.delete(f"/api/v1/access-codes/{code.pk}/")
    assert response.status_code == 200 and response.json()["status"] == CodeStatus.REMOVING
    assert LockCommand.objects.filter(access_code=code, action=CommandAction.DELETE).exists()
    assert AccessCode.objects.get(pk=world.code.pk).status != CodeStatus.REMOVING
