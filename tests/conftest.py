from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import connection

from locks.models import AccessCode, Lock, LockCommand, LockIssue
from portal.models import Booking, Membership, Property, Role, Tenant
from providers.models import ProviderAccount
from tests import factories


@dataclass
class World:
    """The standard cast (DESIGN §11): alice (admin A), bob (staff A), olive (owner of one property in A),
    mallory (admin B). Tenant A is Seaside Stays, tenant B Harbor Homes."""

    seaside: Tenant
    harbor: Tenant
    alice: object
    bob: object
    olive: object
    mallory: object
    olive_membership: Membership
    dune: Property  # owned by olive
    harbor_view: Property  # not olive's
    account: ProviderAccount
    lock: Lock  # on dune
    other_lock: Lock  # on harbor_view
    booking: Booking  # on dune
    other_booking: Booking  # on harbor_view
    code: AccessCode
    command: LockCommand
    issue: LockIssue
    harbor_property: Property
    harbor_lock: Lock


@pytest.fixture(autouse=True)
def _empty_cache():
    """Throttle budgets live in the cache: each test starts with full ones."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(db) -> World:
    seaside = factories.TenantFactory(name="Seaside Stays", slug="seaside")
    harbor = factories.TenantFactory(name="Harbor Homes", slug="harbor")
    alice = factories.UserFactory(username="alice")
    bob = factories.UserFactory(username="bob")
    olive = factories.UserFactory(username="olive")
    mallory = factories.UserFactory(username="mallory")
    factories.MembershipFactory(user=alice, tenant=seaside, role=Role.ADMIN)
    factories.MembershipFactory(user=bob, tenant=seaside, role=Role.STAFF)
    olive_m = factories.MembershipFactory(user=olive, tenant=seaside, role=Role.OWNER)
    factories.MembershipFactory(user=mallory, tenant=harbor, role=Role.ADMIN)
    dune = factories.PropertyFactory(tenant=seaside, name="Dune Cottage")
    dune.owners.add(olive_m)
    harbor_view = factories.PropertyFactory(tenant=seaside, name="Harbor View Loft")
    account = factories.ProviderAccountFactory(tenant=seaside, name="Demo simulator")
    lock = factories.LockFactory(tenant=seaside, property=dune, provider_account=account, name="Dune front")
    other_lock = factories.LockFactory(
        tenant=seaside, property=harbor_view, provider_account=account, name="Harbor front"
    )
    booking = factories.BookingFactory(tenant=seaside, property=dune, guest_name="Ana Costa")
    other_booking = factories.BookingFactory(tenant=seaside, property=harbor_view, guest_name="Ben Okafor")
    code = factories.AccessCodeFactory(tenant=seaside, lock=lock, booking=booking, pin="483920")
    command = factories.LockCommandFactory(tenant=seaside, lock=lock, access_code=code)
    issue = factories.LockIssueFactory(tenant=seaside, lock=lock, access_code=code, command=command)
    harbor_property = factories.PropertyFactory(tenant=harbor, name="Old Town Flat")
    harbor_lock = factories.LockFactory(tenant=harbor, property=harbor_property, name="Old Town door")
    return World(
        seaside=seaside, harbor=harbor, alice=alice, bob=bob, olive=olive, mallory=mallory,
        olive_membership=olive_m, dune=dune, harbor_view=harbor_view, account=account, lock=lock,
        other_lock=other_lock, booking=booking, other_booking=other_booking, code=code, command=command,
        issue=issue, harbor_property=harbor_property, harbor_lock=harbor_lock,
    )


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def client_for(client, user):
    client.force_login(user)
    return client


def verified_client_for(client, user):
    """`client_for`, with a confirmed authenticator and a session that passed it (admins need one for
    provider accounts, API keys and members: portal/two_factor.py)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="Test phone", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
