from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.api.keys import api_key_create, api_key_revoke
from portal.models import Role


@dataclass
class Keys:
    alice: str  # admin, seaside
    bob: str  # staff, seaside
    olive: str  # owner of dune, seaside
    mallory: str  # admin, harbor
    revoked: str  # was staff, seaside


@pytest.fixture
def keys(world) -> Keys:
    now = timezone.now()

    def make(name, tenant, role, user, owner=None):
        return api_key_create(
            tenant=tenant, name=f"{name} key", role=role, created_by=user, now=now, owner_membership=owner
        )[1]

    revoked_row, revoked = api_key_create(
        tenant=world.seaside, name="old PMS", role=Role.STAFF, created_by=world.alice, now=now
    )
    api_key_revoke(api_key=revoked_row, actor=world.alice, now=now)
    return Keys(
        alice=make("alice", world.seaside, Role.ADMIN, world.alice),
        bob=make("bob", world.seaside, Role.STAFF, world.alice),
        olive=make("olive", world.seaside, Role.OWNER, world.alice, owner=world.olive_membership),
        mallory=make("mallory", world.harbor, Role.ADMIN, world.mallory),
        revoked=revoked,
    )


@pytest.fixture
def api():
    """An APIClient factory: api(key) sends the key as a Bearer token."""

    def make(key: str | None = None) -> APIClient:
        client = APIClient()
        if key:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return make
