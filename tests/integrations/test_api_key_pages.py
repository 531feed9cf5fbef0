from __future__ import annotations

import re

from django.urls import reverse
from rest_framework.test import APIClient

from portal.models import ApiKey
from tests.conftest import verified_client_for


def test_alice_creates_a_key_that_is_shown_once_and_works(client, world):
    verified_client_for(client, world.alice)
    url = reverse("api_key_list", args=["seaside"])
    response = client.post(url, {"name": "Guesty sync", "role": "staff"}, follow=True)
    key = re.search(r"lsk_[0-9a-f]{8}_[\w-]+", response.content.decode()).group(0)
    assert "will not be shown again" in response.content.decode()
    assert key not in client.get(url).content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/bookings/").status_code == 200


def test_alice_revokes_a_key(client, world):
    verified_client_for(client, world.alice)
    client.post(reverse("api_key_list", args=["seaside"]), {"name": "old", "role": "staff"})
    row = ApiKey.objects.get(name="old")
    response = client.post(reverse("api_key_revoke", args=["seaside", row.pk]))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_an_owner_key_needs_an_owner(client, world):
    verified_client_for(client, world.alice)
    response = client.post(reverse("api_key_list", args=["seaside"]), {"name": "olive", "role": "owner"})
    assert "An owner key must act for one of this tenant&#x27;s owners." in response.content.decode()
    client.post(
        reverse("api_key_list", args=["seaside"]),
        {"name": "olive", "role": "owner", "owner": world.olive_membership.pk},
    )
    assert ApiKey.objects.get(name="olive").owner_membership == world.olive_membership


def test_staff_and_owners_cannot_manage_keys(client, world):
    for user in (world.bob, world.olive):
        client.force_login(user)
        assert client.get(reverse("api_key_list", args=["seaside"])).status_code == 403
        assert client.post(reverse("api_key_list", args=["seaside"]), {"name": "x", "role": "admin"}).status_code == 403
    assert not ApiKey.objects.exists()


def test_mallory_gets_404_on_alices_key(client, world):
    row = ApiKey.objects.create(tenant=world.seaside, name="pms", prefix="abcd1234", key_hash="0" * 64)
    verified_client_for(client, world.mallory)
    assert client.post(reverse("api_key_revoke", args=["seaside", row.pk])).status_code == 404
    assert client.post(reverse("api_key_revoke", args=["harbor", row.pk])).status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
