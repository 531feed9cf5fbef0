from __future__ import annotations

from locks.models import Activity, CommandAction, CommandState, Lock, LockCommand


def test_it_lists_and_gets_properties(api, keys, world):
    client = api(keys.alice)
    assert client.get("/api/v1/properties/").json()["count"] == 2
    detail = client.get(f"/api/v1/properties/{world.dune.pk}/").json()
    assert detail["name"] == "Dune Cottage"
    assert "ical_url" not in detail  # feed URLs carry the channel's secret token


def test_mallory_gets_404_on_alices_property(api, keys, world):
    assert api(keys.mallory).get(f"/api/v1/properties/{world.dune.pk}/").status_code == 404


def test_owner_key_gets_404_on_a_property_she_does_not_own(api, keys, world):
    assert api(keys.olive).get(f"/api/v1/properties/{world.harbor_view.pk}/").status_code == 404
    assert api(keys.olive).get(f"/api/v1/properties/{world.dune.pk}/").status_code == 200


def test_it_lists_and_gets_locks(api, keys, world):
    client = api(keys.bob)
    names = [lock["name"] for lock in client.get("/api/v1/locks/").json()["results"]]
    assert names == ["Dune front", "Harbor front"]
    lock = client.get(f"/api/v1/locks/{world.lock.pk}/").json()
    assert lock["vendor"] == "simulator"
    assert lock["requirements"]["code_lengths"] == [4, 5, 6, 7, 8]


def test_mallory_gets_404_on_alices_lock(api, keys, world):
    assert api(keys.mallory).get(f"/api/v1/locks/{world.lock.pk}/").status_code == 404
    assert api(keys.mallory).post(f"/api/v1/locks/{world.lock.pk}/reconcile/").status_code == 404
    assert not LockCommand.objects.filter(lock=world.lock, action=CommandAction.READ_CODES).exists()


def test_it_queues_a_check_of_the_lock(api, keys, world, monkeypatch, django_capture_on_commit_callbacks):
    """The same action as the lock page's "Check the lock": a read on the lock's queue, behind any
    command in flight, answered at once."""
    dispatched = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args: dispatched.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        response = api(keys.bob).post(f"/api/v1/locks/{world.lock.pk}/reconcile/")
    assert response.status_code == 202
    read = LockCommand.objects.get(lock=world.lock, action=CommandAction.READ_CODES)
    assert response.json() == {"lock": world.lock.pk, "reconcile_requested": True}
    assert read.state == CommandState.QUEUED and read.access_code is None
    assert dispatched == [("locks.tasks.dispatch_lock", world.lock.pk)]
    assert Activity.objects.filter(lock=world.lock, command=read, verb="command.queued").count() == 1


def test_owner_key_cannot_request_a_reconciliation(api, keys, world):
    response = api(keys.olive).post(f"/api/v1/locks/{world.lock.pk}/reconcile/")
    assert response.status_code == 403
    assert not LockCommand.objects.filter(lock=world.lock, action=CommandAction.READ_CODES).exists()


def test_it_accepts_a_pin_that_fits_the_lock(api, keys, world):
    response = api(keys.bob).post(f"/api/v1/locks/{world.lock.pk}/check-pin/", {"pin": " 583716 "}, format="json")
    assert response.status_code == 200
    assert response.json() == {"lock": world.lock.pk, "pin_usable": True}


def test_a_pin_breaking_the_locks_rules_is_a_field_error(api, keys, world):
    Lock.objects.filter(pk=world.other_lock.pk).update(
        requirements={"code_lengths": [6], "constraints": ["no_zeros", "cannot_start_with_12"]}
    )
    client = api(keys.bob)
    url = f"/api/v1/locks/{world.other_lock.pk}/check-pin/"
    response = client.post(url, {"pin": "120583"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "pin": ["The PIN cannot start with 12.", "The PIN cannot contain the digit 0."]
    }
    assert client.post(url, {"pin": "4839"}, format="json").json()["fields"]["pin"] == ["The PIN must be 6 digits long."]
    assert client.post(url, {"pin": "1111"}, format="json").status_code == 400


def test_a_pin_already_on_the_lock_is_refused(api, keys, world):
    response = api(keys.bob).post(f"/api/v1/locks/{world.lock.pk}/check-pin/", {"pin": "483920"}, format="json")
    assert response.json()["fields"] == {"pin": ["This PIN is already in use on this lock."]}


def test_owners_and_mallory_cannot_probe_pins(api, keys, world):
    url = f"/api/v1/locks/{world.lock.pk}/check-pin/"
    assert api(keys.olive).post(url, {"pin": "483920"}, format="json").status_code == 403
    assert api(keys.mallory).post(url, {"pin": "483920"}, format="json").status_code == 404
