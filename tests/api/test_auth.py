from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from portal.api.keys import api_key_authenticate, api_key_create
from portal.models import ApiKey, Role


def test_it_lists_with_a_valid_key_and_records_last_use(api, keys, world):
    response = api(keys.bob).get("/api/v1/properties/")
    assert response.status_code == 200
    assert {p["name"] for p in response.json()["results"]} == {"Dune Cottage", "Harbor View Loft"}
    assert ApiKey.objects.get(name="bob key").last_used_at is not None


def test_it_stores_only_a_hash_of_the_key(keys):
    row = ApiKey.objects.get(name="alice key")
    assert keys.alice.startswith(f"lsk_{row.prefix}_")
    assert keys.alice not in (row.key_hash, row.prefix)
    assert len(row.key_hash) == 64


def test_revoked_key_gets_401(api, keys):
    response = api(keys.revoked).get("/api/v1/properties/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key.", "code": "authentication_failed", "fields": {}}


def test_a_tampered_key_gets_401(api, keys):
    assert api(keys.alice[:-2] + "xx").get("/api/v1/bookings/").status_code == 401
    assert api("not-a-key").get("/api/v1/bookings/").status_code == 401


def test_no_credentials_get_401(api, world):
    assert api().get("/api/v1/bookings/").status_code in (401, 403)
    assert api().get("/api/v1/bookings/").json()["code"] == "not_authenticated"


def test_it_updates_last_used_at_at_most_once_a_minute(world):
    now = timezone.now()
    row, raw = api_key_create(tenant=world.seaside, name="pms", role=Role.STAFF, created_by=world.alice, now=now)
    api_key_authenticate(raw_key=raw, now=now)
    api_key_authenticate(raw_key=raw, now=now + timedelta(seconds=30))
    row.refresh_from_db()
    assert row.last_used_at == now
    api_key_authenticate(raw_key=raw, now=now + timedelta(minutes=2))
    row.refresh_from_db()
    assert row.last_used_at == now + timedelta(minutes=2)


def test_session_user_picks_the_tenant_with_a_header(client, world):
    client.force_login(world.alice)
    response = client.get("/api/v1/properties/", HTTP_X_LOCKSTEP_TENANT="seaside")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_session_user_with_one_membership_needs_no_tenant(client, world):
    client.force_login(world.bob)
    assert client.get("/api/v1/properties/").status_code == 200


def test_session_user_gets_404_for_a_tenant_they_are_not_in(client, world):
    client.force_login(world.mallory)
    assert client.get("/api/v1/properties/?tenant=seaside").status_code == 404


def test_session_owner_sees_only_owned_properties(client, world):
    client.force_login(world.olive)
    response = client.get("/api/v1/properties/")
    assert [p["name"] for p in response.json()["results"]] == ["Dune Cottage"]


def test_a_viewset_cannot_override_get_queryset():
    import pytest
    from rest_framework import viewsets

    from portal.api.routing import TenantScopedViewSetMixin

    with pytest.raises(TypeError, match="get_queryset"):

        class Leaky(TenantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
            property_path = "property"

            def get_queryset(self):
                return ApiKey.objects.all()
