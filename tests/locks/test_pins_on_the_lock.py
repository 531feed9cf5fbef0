"""DESIGN §4 "PINs": every PIN seen on the lock is taken, and a booking's common PIN changes on every door
together."""

from __future__ import annotations

from datetime import timedelta

from locks.actions import code_regenerate_pin
from locks.codes import live_pins
from locks.commands import command_fail
from locks.dispatch import dispatch_lock
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    LockCommand,
    LockIssue,
)
from locks.tick import tick
from portal.encryption import encrypt_str
from portal.services import booking_create
from providers.base import Progress, Reason
from tests import factories
from tests.locks.conftest import T0


def _unmanaged(place, lock, pin: str) -> None:
    factories.LockIssueFactory(
        tenant=place.tenant, lock=lock, access_code=None, kind=IssueKind.UNMANAGED_CODE,
        data={"codes": [{"vendor_code_ref": "slot-9", "name": "Old keypad code", "pin_token": encrypt_str(pin)}]},
    )


def test_a_pin_read_back_from_an_unmanaged_code_counts_as_taken(place):
    _unmanaged(place, place.jit, "4827")
    assert "4827" in live_pins(place.jit)


def test_a_guest_is_never_given_a_pin_already_on_the_lock(place):
    place.property.pin_policy = "phone_last4"
    place.property.save(update_fields=["pin_policy"])
    _unmanaged(place, place.jit, "4827")
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa",
                             guest_phone="+351 912 344 827", check_in=T0 + timedelta(days=3),
                             check_out=T0 + timedelta(days=5), now=T0)
    pins = {code.pin for code in AccessCode.objects.filter(booking=booking)}
    assert "4827" not in pins and len(pins) == 1


def _booked_and_on_both_doors(place, cloud):
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa",
                             check_in=T0 + timedelta(hours=2), check_out=T0 + timedelta(days=2), now=T0)
    back = AccessCode.objects.get(booking=booking, lock=place.jit)
    tick(now=back.program_at)
    front = AccessCode.objects.get(booking=booking, lock=place.native)
    back.refresh_from_db()
    assert back.status == CodeStatus.SET and front.is_scheduled_on_device
    assert front.pin == back.pin and front.common_code_key
    return booking, front, back


def test_new_pin_on_one_door_changes_the_common_pin_on_every_door(place, cloud):
    _, front, back = _booked_and_on_both_doors(place, cloud)
    old = front.pin
    code_regenerate_pin(code=front, actor=None, now=back.program_at + timedelta(minutes=1))
    front.refresh_from_db()
    back.refresh_from_db()
    assert front.pin == back.pin != old
    assert front.common_code_key == back.common_code_key != ""
    for code in (front, back):
        assert LockCommand.objects.filter(access_code=code, action=CommandAction.UPDATE,
                                          state=CommandState.QUEUED).exists()


def test_a_duplicate_on_one_door_gives_the_booking_a_new_pin_on_every_door(place, cloud):
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa",
                             check_in=T0 + timedelta(days=1), check_out=T0 + timedelta(days=3), now=T0)
    front = AccessCode.objects.get(booking=booking, lock=place.native)
    back = AccessCode.objects.get(booking=booking, lock=place.jit)
    dispatch_lock(lock_id=place.native.pk, now=T0)  # the front door holds the PIN (preloaded)
    front.refresh_from_db()
    assert front.is_scheduled_on_device
    old = front.pin

    cloud.mode = Progress.PENDING
    tick(now=back.program_at)
    create = LockCommand.objects.get(access_code=back, action=CommandAction.CREATE)
    command_fail(command=create, reason=Reason.DUPLICATE_PIN, detail="already in use", now=back.program_at)
    front.refresh_from_db()
    back.refresh_from_db()
    assert back.pin == front.pin != old
    assert LockCommand.objects.filter(access_code=front, action=CommandAction.UPDATE,
                                      state=CommandState.QUEUED).exists()
    assert back.status == CodeStatus.SETTING


def test_when_no_pin_fits_every_door_an_issue_says_why(place, cloud):
    _, front, back = _booked_and_on_both_doors(place, cloud)
    # The doors share no PIN length any more: one PIN for both is impossible.
    place.native.requirements = {**place.native.requirements, "code_lengths": [4]}
    place.native.save(update_fields=["requirements"])
    place.jit.requirements = {**place.jit.requirements, "code_lengths": [6]}
    place.jit.save(update_fields=["requirements"])
    front = AccessCode.objects.select_related("lock").get(pk=front.pk)
    code_regenerate_pin(code=front, actor=None, now=back.program_at + timedelta(minutes=1))
    front.refresh_from_db()
    back.refresh_from_db()
    assert front.pin != back.pin
    issue = LockIssue.objects.get(access_code=front, status="open")
    assert "every door" in issue.detail
