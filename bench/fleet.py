"""Builds bench data fast (bulk inserts), on the simulator with zero latency and no faults."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from locks.models import AccessCode, CodeStatus, CommandState, Lock, LockCommand
from portal.encryption import fingerprint
from portal.models import Booking, Property, Tenant
from providers.models import ProviderAccount, Vendor
from providers.simulator import simulator_device_create

_serial = itertools.count(1)


def tenant_with_account(slug: str) -> tuple[Tenant, Property, ProviderAccount]:
    tenant = Tenant.objects.create(name=f"Bench {slug}", slug=slug)
    prop = Property.objects.create(tenant=tenant, name=f"Bench property {slug}")
    account = ProviderAccount.objects.create(
        tenant=tenant, vendor=Vendor.SIMULATOR, name="bench", credentials={"seed": 1}
    )
    return tenant, prop, account


def locks(tenant: Tenant, prop: Property, account: ProviderAccount, count: int) -> list[Lock]:
    made = []
    for _ in range(count):
        n = next(_serial)
        lock = Lock.objects.create(
            tenant=tenant, property=prop, provider_account=account, vendor_device_id=f"bench-{n}",
            name=f"Bench door {n}", requirements={"code_lengths": [6], "max_active_codes": 500, "constraints": []},
        )
        simulator_device_create(account=account, device_id=lock.vendor_device_id, profile="smartthings",
                                requirements={"max_active_codes": 500})
        made.append(lock)
    return made


def history(lock_list: list[Lock], count: int, *, now: datetime) -> None:
    """Finished codes and commands from long ago: what a busy operator has after a few years."""
    start = now - timedelta(days=900)
    per_batch = 5000
    for offset in range(0, count, per_batch):
        codes = [
            AccessCode(
                tenant_id=lock_list[i % len(lock_list)].tenant_id, lock=lock_list[i % len(lock_list)],
                name=f"Old guest {i}", status=CodeStatus.REMOVED, starts_at=start + timedelta(minutes=i),
                ends_at=start + timedelta(minutes=i, days=3), program_at=start + timedelta(minutes=i - 60),
            )
            for i in range(offset, min(count, offset + per_batch))
        ]
        AccessCode.objects.bulk_create(codes)
        LockCommand.objects.bulk_create(
            LockCommand(tenant_id=c.tenant_id, lock_id=c.lock_id, access_code=c, action="create",
                        state=CommandState.SUCCEEDED, sent_at=c.program_at, finished_at=c.program_at)
            for c in codes
        )


def due_codes(lock_list: list[Lock], count: int, *, now: datetime) -> list[AccessCode]:
    """Codes whose program_at has come (just-in-time: 59 minutes before their window)."""
    made = []
    for i in range(count):
        lock = lock_list[i % len(lock_list)]
        pin = f"{(i * 7919 + 271828) % 800000 + 100000}"
        made.append(AccessCode(
            tenant_id=lock.tenant_id, lock=lock, name=f"Guest {i}", pin=pin, pin_fingerprint=fingerprint(pin),
            status=CodeStatus.UNSET, starts_at=now + timedelta(minutes=59), ends_at=now + timedelta(days=3),
            program_at=now - timedelta(minutes=1),
        ))
    return AccessCode.objects.bulk_create(made)


def bookings(tenant: Tenant, prop: Property, count: int, *, now: datetime) -> None:
    # One after another: confirmed stays of a property never overlap (PostgreSQL refuses them).
    Booking.objects.bulk_create(
        Booking(tenant=tenant, property=prop, guest_name=f"Guest {i}", check_in=now + timedelta(hours=i),
                check_out=now + timedelta(hours=i, minutes=50))
        for i in range(count)
    )
