from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from locks.models import Lock
from portal.models import Property, Tenant
from providers import registry
from providers.models import ProviderAccount
from tests import factories
from tests.locks.fakes import FakeCloud, FakeProvider

# A fixed "now" for the engine: a Monday morning, far from any DST change.
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def cloud(monkeypatch) -> FakeCloud:
    """Every simulator account talks to this scripted cloud."""
    cloud = FakeCloud()
    monkeypatch.setitem(registry.ADAPTERS, "simulator", "tests.locks.fakes.FakeProvider")
    monkeypatch.setattr(FakeProvider, "cloud", cloud)
    return cloud


@dataclass
class Place:
    tenant: Tenant
    account: ProviderAccount
    property: Property
    native: Lock  # Seam-like: preloads 72 h ahead, the lock enforces the window
    jit: Lock  # SmartThings-like: programmed 60 min ahead, deleted at the end


def _place(tenant: Tenant, *, with_jit: bool = True) -> Place:
    account = factories.ProviderAccountFactory(tenant=tenant, webhook_secret="s3cret")
    prop = factories.PropertyFactory(tenant=tenant, name="Dune Cottage", before_minutes=30, after_minutes=30)
    requirements = {"code_lengths": [4, 5, 6], "constraints": [], "name_max_length": 12}
    native = factories.LockFactory(tenant=tenant, property=prop, provider_account=account, name="Front",
                                   vendor_device_id="front", native_scheduling=True, pin_readable=True,
                                   requirements=requirements)
    jit = factories.LockFactory(tenant=tenant, property=prop, provider_account=account, name="Back",
                                vendor_device_id="back", native_scheduling=False, pin_readable=True,
                                requirements=requirements) if with_jit else None
    return Place(tenant=tenant, account=account, property=prop, native=native, jit=jit)


@pytest.fixture
def place(db, cloud) -> Place:
    return _place(factories.TenantFactory(slug="seaside", default_code_length=6))


@pytest.fixture
def single(db, cloud) -> Place:
    """A property with one natively scheduling lock only."""
    return _place(factories.TenantFactory(slug="solo", default_code_length=6), with_jit=False)


def reconcile_now(*, lock: Lock, now: datetime):
    """"Check the lock" as staff do (a read queued on the lock), then the dispatcher's turn; returns what
    the read found (None when the read is still waiting behind a command in flight)."""
    from django.db import transaction

    from locks.actions import lock_check_now
    from locks.dispatch import dispatch_lock
    from locks.models import Activity, LockCommand
    from locks.reconcile import ReconcileReport

    with transaction.atomic():
        read = lock_check_now(lock=lock, actor=None, now=now)
    dispatch_lock(lock_id=lock.pk, now=now)
    done = Activity.objects.filter(command=LockCommand.objects.get(pk=read.pk), verb="lock.reconciled").first()
    if done is None:
        return None
    lock.refresh_from_db()
    return ReconcileReport(**{key: done.data[key] for key in ("readable", "matched", "repushed", "desynced",
                                                              "rescheduled", "unmanaged")})
