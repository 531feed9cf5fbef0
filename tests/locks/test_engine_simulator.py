"""End to end with the simulator provider: booking → codes on a Seam-like and a SmartThings-like lock →
webhooks through the real intake → set → removed, with the tasks as the scheduler would run them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from locks import tasks
from locks.models import AccessCode, CodeStatus, LockCommand
from portal.services import booking_create
from providers.models import SimulatedDevice
from providers.simulator import PROFILES, simulator_advance, simulator_device_create
from tests import factories

T0 = datetime(2030, 6, 3, 12, 0, tzinfo=UTC)


def _lock(tenant, prop, account, profile):
    lock = factories.LockFactory(
        tenant=tenant, property=prop, provider_account=account, vendor_device_id=f"sim-{profile}",
        requirements={**PROFILES[profile].requirements, "simulator_profile": profile},
        native_scheduling=PROFILES[profile].native_scheduling, pin_readable=PROFILES[profile].pin_readable,
    )
    simulator_device_create(account=account, device_id=lock.vendor_device_id, profile=profile)
    return lock


def test_it_runs_a_booking_from_creation_to_removal_on_simulated_locks(db, django_capture_on_commit_callbacks):
    tenant = factories.TenantFactory()
    account = factories.ProviderAccountFactory(tenant=tenant, credentials={"seed": 3}, webhook_secret="s3cret")
    prop = factories.PropertyFactory(tenant=tenant)
    seam, smartthings = _lock(tenant, prop, account, "seam"), _lock(tenant, prop, account, "smartthings")

    def run_until(moment):
        traveller.move_to(moment)
        with django_capture_on_commit_callbacks(execute=True):
            tasks.tick()
            simulator_advance(account=account, now=moment)
            tasks.tick()

    with time_machine.travel(T0, tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            booking = booking_create(tenant=tenant, property=prop, guest_name="Ana Costa",
                                     check_in=T0 + timedelta(days=5), check_out=T0 + timedelta(days=7))
        native = AccessCode.objects.get(booking=booking, lock=seam)
        jit = AccessCode.objects.get(booking=booking, lock=smartthings)
        assert native.pin == jit.pin and native.common_code_key

        run_until(native.program_at + timedelta(minutes=5))
        native.refresh_from_db()
        assert native.status == CodeStatus.UNSET and native.is_scheduled_on_device  # preloaded 72 h ahead

        run_until(jit.program_at + timedelta(minutes=5))
        jit.refresh_from_db()
        assert jit.status == CodeStatus.SET  # programmed 60 min ahead, confirmed by webhook

        run_until(native.starts_at + timedelta(minutes=1))
        native.refresh_from_db()
        assert native.status == CodeStatus.SET

        run_until(native.ends_at + timedelta(minutes=20))
        run_until(native.ends_at + timedelta(minutes=40))
        native.refresh_from_db()
        jit.refresh_from_db()
        assert (native.status, jit.status) == (CodeStatus.REMOVED, CodeStatus.REMOVED)
        assert sorted(LockCommand.objects.values_list("action", flat=True)) == ["create", "create", "delete", "delete"]
        for lock in (seam, smartthings):
            device = SimulatedDevice.objects.get(account=account, device_id=lock.vendor_device_id)
            assert device.codes == {}
