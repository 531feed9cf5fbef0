from __future__ import annotations

from locks.models import AccessCode, Activity, CodeStatus


def test_it_lists_codes_without_pins(api, keys, world):
    response = api(keys.bob).get("/api/v1/access-codes/")
    assert response.status_code == 200
    [code] = response.json()["results"]
    assert code["id"] == world.code.pk
    assert "pin" not in code


def test_staff_get_the_pin_and_the_reveal_is_recorded(api, keys, world):
    response = api(keys.bob).get(f"/api/v1/access-codes/{world.code.pk}/")
    assert response.status_code == 200
    assert response.json()["pin"] == "483920"
    assert Activity.objects.filter(access_code=world.code, verb="pin.revealed").count() == 1


def test_owner_key_never_sees_a_pin(api, keys, world):
    response = api(keys.olive).get(f"/api/v1/access-codes/{world.code.pk}/")
    assert response.status_code == 200
    assert "pin" not in response.json()
    assert not Activity.objects.filter(verb="pin.revealed").exists()


def test_mallory_gets_404_on_alices_code(api, keys, world):
    client = api(keys.mallory)
    assert client.get(f"/api/v1/access-codes/{world.code.pk}/").status_code == 404
    assert client.post(f"/api/v1/access-codes/{world.code.pk}/regenerate/").status_code == 404
    assert AccessCode.objects.get(pk=world.code.pk).pin == "483920"


def test_it_regenerates_a_pin(api, keys, world):
    response = api(keys.bob).post(f"/api/v1/access-codes/{world.code.pk}/regenerate/")
    assert response.status_code == 200, response.json()
    new_pin = AccessCode.objects.get(pk=world.code.pk).pin
    assert new_pin != "483920"
    assert response.json()["pin"] == new_pin


def test_owner_key_cannot_regenerate(api, keys, world):
    assert api(keys.olive).post(f"/api/v1/access-codes/{world.code.pk}/regenerate/").status_code == 403
    assert AccessCode.objects.get(pk=world.code.pk).pin == "483920"


def test_regenerating_a_removed_code_is_a_409(api, keys, world):
    AccessCode.objects.filter(pk=world.code.pk).update(status=CodeStatus.REMOVED)
    response = api(keys.bob).post(f"/api/v1/access-codes/{world.code.pk}/regenerate/")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_it_filters_codes_by_lock_and_status(api, keys, world):
    client = api(keys.bob)
    assert client.get(f"/api/v1/access-codes/?lock={world.other_lock.pk}").json()["count"] == 0
    assert client.get(f"/api/v1/access-codes/?lock={world.lock.pk}&status=unset").json()["count"] == 1
    assert client.get("/api/v1/access-codes/?lock=x").status_code == 400


def test_it_sets_a_pin_the_caller_chose(api, keys, world):
    response = api(keys.bob).post(f"/api/v1/access-codes/{world.code.pk}/regenerate/", {"pin": "583917"},
                                  format="json")
    assert response.status_code == 200, response.json()
    assert AccessCode.objects.get(pk=world.code.pk).pin == "583917"
    assert response.json()["pin"] == "583917"


def test_a_chosen_pin_that_breaks_the_locks_rules_is_a_400_and_changes_nothing(api, keys, world):
    world.lock.requirements = {"code_lengths": [6], "constraints": ["no_zeros"]}
    world.lock.save()
    client = api(keys.bob)
    for bad in ("1234", "103957", "111111", "12a456"):
        response = client.post(f"/api/v1/access-codes/{world.code.pk}/regenerate/", {"pin": bad}, format="json")
        assert response.status_code == 400, bad
        assert response.json()["fields"]["pin"], bad
    assert AccessCode.objects.get(pk=world.code.pk).pin == "483920"


def test_a_chosen_pin_already_on_the_lock_is_a_400(api, keys, world):
    from tests.factories import AccessCodeFactory

    AccessCodeFactory(tenant=world.seaside, lock=world.lock, pin="583917", status=CodeStatus.SET)
    response = api(keys.bob).post(f"/api/v1/access-codes/{world.code.pk}/regenerate/", {"pin": "583917"},
                                  format="json")
    assert response.status_code == 400
    assert AccessCode.objects.get(pk=world.code.pk).pin == "483920"
