from __future__ import annotations

from locks.models import Lock


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
    assert Lock.objects.get(pk=world.lock.pk).reconcile_requested is False


def test_it_requests_a_reconciliation(api, keys, world, monkeypatch):
    queued = []
    monkeypatch.setattr("portal.api.views.async_task", lambda *args: queued.append(args))
    response = api(keys.bob).post(f"/api/v1/locks/{world.lock.pk}/reconcile/")
    assert response.status_code == 202
    assert response.json() == {"lock": world.lock.pk, "reconcile_requested": True}
    assert Lock.objects.get(pk=world.lock.pk).reconcile_requested is True


def test_owner_key_cannot_request_a_reconciliation(api, keys, world):
    response = api(keys.olive).post(f"/api/v1/locks/{world.lock.pk}/reconcile/")
    assert response.status_code == 403
    assert Lock.objects.get(pk=world.lock.pk).reconcile_requested is False
