"""Backup codes: a pool kept programmed on each lock of a property that asks for one; staff hand one to a
stay whose own code failed; it is recorded, ends with the stay, and the pool is kept full."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from locks.backup import backup_code_hand_out, pool
from locks.dispatch import dispatch_lock
from locks.models import AccessCode, Activity, CodeStatus
from locks.tick import tick
from portal.models import Property, Role
from portal.services import booking_create
from providers.base import ProviderError, Reason
from tests import factories
from tests.conftest import client_for
from tests.locks.conftest import T0


def _pool_of(place, size):
    Property.objects.filter(pk=place.property.pk).update(backup_pool_size=size)
    place.property.refresh_from_db()


def test_the_tick_keeps_each_lock_s_pool_full_and_programmed(place, cloud):
    _pool_of(place, 2)
    report = tick(now=T0)
    assert report.backups_made == 4
    for lock in (place.native, place.jit):
        codes = pool(lock)
        assert len(codes) == 2 and {c.status for c in codes} == {CodeStatus.SET}
        assert codes[0].pin != codes[1].pin and codes[0].code_type == "ongoing"
    assert tick(now=T0 + timedelta(minutes=1)).backups_made == 0


def test_a_backup_code_handed_out_on_a_failed_guest_code_is_on_the_lock_recorded_and_replaced_after_the_stay(
    place, cloud, client
):
    now = timezone.now()  # the page hands it out at the real time
    _pool_of(place, 1)
    tick(now=now)
    [spare] = pool(place.jit)
    # The guest's own code on the back door fails.
    check_in = now + timedelta(minutes=30)
    cloud.answer("create", ProviderError(Reason.INVALID_PIN, "refused"))
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa",
                             check_in=check_in, check_out=check_in + timedelta(days=2), now=now)
    dispatch_lock(lock_id=place.jit.pk, now=now)
    guest = AccessCode.objects.get(booking=booking, lock=place.jit, purpose="guest")
    assert guest.status == CodeStatus.FAILED

    bob = factories.UserFactory(username="bob")
    factories.MembershipFactory(user=bob, tenant=place.tenant, role=Role.STAFF)
    client_for(client, bob)
    page = client.get(reverse("booking_detail", args=[place.tenant.slug, booking.pk])).content.decode()
    hand_out = reverse("locks:backup_hand_out", args=[place.tenant.slug, booking.pk, place.jit.pk])
    assert hand_out in page
    assert client.post(hand_out).status_code == 302

    spare.refresh_from_db()
    assert spare.booking_id == booking.pk and spare.status == CodeStatus.SET  # already on the door
    assert spare.ends_at == booking.check_out + timedelta(minutes=30)
    assert Activity.objects.filter(verb="code.backup_handed_out", access_code=spare, actor=bob).exists()
    page = client.get(reverse("booking_detail", args=[place.tenant.slug, booking.pk])).content.decode()
    assert f'id="chip-{spare.pk}"' in page and "handed out" in page
    [replacement] = pool(place.jit)  # the lock keeps its spare
    assert replacement.pk != spare.pk

    dispatch_lock(lock_id=place.jit.pk, now=now)
    tick(now=spare.ends_at)
    spare.refresh_from_db()
    assert spare.status == CodeStatus.REMOVED
    assert [c.pk for c in pool(place.jit)] == [replacement.pk]
    replacement.refresh_from_db()
    assert replacement.status == CodeStatus.SET


def test_nothing_to_hand_out_says_so_and_changes_nothing(place, cloud):
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana",
                             check_in=T0 + timedelta(days=1), check_out=T0 + timedelta(days=2), now=T0)
    with pytest.raises(ValidationError):
        backup_code_hand_out(booking=booking, lock=place.jit, actor=None, now=T0)
    assert not AccessCode.objects.filter(purpose="backup").exists()


def test_a_cancelled_stay_takes_its_backup_code_off_the_lock(place, cloud):
    from portal.services import booking_cancel

    _pool_of(place, 1)
    tick(now=T0)
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana",
                             check_in=T0 + timedelta(days=1), check_out=T0 + timedelta(days=2), now=T0)
    code = backup_code_hand_out(booking=booking, lock=place.native, actor=None, now=T0)
    booking_cancel(booking=booking, now=T0 + timedelta(minutes=1))
    code.refresh_from_db()
    assert code.status in (CodeStatus.REMOVING, CodeStatus.REMOVED)


def test_another_tenant_cannot_hand_out_a_backup_code(world, client):
    client_for(client, world.mallory)
    url = reverse("locks:backup_hand_out", args=["seaside", world.booking.pk, world.lock.pk])
    assert client.post(url).status_code == 404
    client_for(client, world.olive)
    assert client.post(url).status_code == 403
