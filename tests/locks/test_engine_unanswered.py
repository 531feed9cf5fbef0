"""A create whose answer was never recorded (the worker died between the vendor's acceptance and our write,
DESIGN §4 "The sweeper") is not sent again before the lock is asked whether it landed: no orphan code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from locks import dispatch
from locks.actions import code_regenerate_pin
from locks.models import AccessCode, CodeStatus, CommandState, LockCommand
from locks.sweep import sweep
from locks.tick import tick
from portal.services import booking_create
from providers.base import ObservedCode, ProviderError, Reason
from tests.locks.conftest import T0
from tests.locks.fakes import Call


def _creates(cloud) -> list[Call]:
    return [call for call in cloud.sent("create") if call.device == "back"]


class WorkerDied(Exception):
    """The process running the dispatcher is killed."""


def _code(place) -> AccessCode:
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ben Okafor",
                             check_in=T0, check_out=T0 + timedelta(days=2), now=T0)
    return AccessCode.objects.get(booking=booking, lock=place.jit)


def _dies_after_the_vendor_accepts(monkeypatch, place, code: AccessCode) -> LockCommand:
    acknowledge = dispatch.command_acknowledge

    def die(*, command: LockCommand, **kwargs: Any) -> None:
        if command.access_code_id == code.pk:
            raise WorkerDied
        acknowledge(command=command, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(dispatch, "command_acknowledge", die)
        with pytest.raises(WorkerDied):
            tick(now=T0)
    create = LockCommand.objects.get(access_code=code)
    assert create.state == CommandState.SENT and create.vendor_ref == ""
    return create


def _time_out(create: LockCommand) -> None:
    sweep(now=T0 + timedelta(minutes=6))  # asked about: no reference, the vendor cannot say
    sweep(now=T0 + timedelta(minutes=31))  # past the hard limit
    assert LockCommand.objects.get(pk=create.pk).state == CommandState.TIMED_OUT


def test_it_adopts_a_create_that_landed_before_the_worker_died_instead_of_creating_it_again(
    place, cloud, monkeypatch
):
    code = _code(place)
    first = _dies_after_the_vendor_accepts(monkeypatch, place, code)
    assert list(cloud.codes["back"]) == [cloud.slot_of[code.pk]]  # the lock has it
    _time_out(first)

    tick(now=T0 + timedelta(minutes=32))

    code.refresh_from_db()
    retry = LockCommand.objects.get(access_code=code, attempt=2)
    assert len(_creates(cloud)) == 1  # never a second create
    assert retry.state == CommandState.SUCCEEDED
    assert code.status == CodeStatus.SET and code.vendor_code_ref == cloud.slot_of[code.pk]
    assert list(cloud.codes["back"]) == [cloud.slot_of[code.pk]]


def test_it_finds_a_landed_create_by_name_and_pin_when_its_slot_was_never_recorded(place, cloud, monkeypatch):
    code = _code(place)
    first = _dies_after_the_vendor_accepts(monkeypatch, place, code)
    # The vendor filed it under a slot we never heard of.
    landed = cloud.codes["back"].pop(cloud.slot_of[code.pk])
    cloud.codes["back"]["slot-77"] = ObservedCode("slot-77", name=landed.name, pin=landed.pin)
    cloud.codes["back"]["slot-78"] = ObservedCode("slot-78", name="Someone else", pin="555123")
    _time_out(first)

    tick(now=T0 + timedelta(minutes=32))

    code.refresh_from_db()
    assert len(_creates(cloud)) == 1
    assert code.status == CodeStatus.SET and code.vendor_code_ref == "slot-77"


def test_it_creates_again_when_the_lock_does_not_hold_the_unanswered_create(place, cloud, monkeypatch):
    code = _code(place)
    first = _dies_after_the_vendor_accepts(monkeypatch, place, code)
    cloud.codes["back"].clear()  # the vendor accepted it, but it never reached the lock
    _time_out(first)

    tick(now=T0 + timedelta(minutes=32))

    code.refresh_from_db()
    assert len(_creates(cloud)) == 2
    assert code.status == CodeStatus.SET


def test_a_code_typed_at_the_keypad_with_the_guests_pin_is_not_taken_for_the_unanswered_create(
    place, cloud, monkeypatch
):
    """Seen in `simulate --workers 3 --kill-workers --broker redis` (code 391): the unanswered create never
    reached the lock, someone had typed the same PIN at the keypad under another name, and the retry adopted
    that code as ours — `set` with the keypad code's slot, no window on the lock, and its end would have
    deleted someone else's code. What an attempt put on a lock carries its name as well as its PIN."""
    code = _code(place)
    first = _dies_after_the_vendor_accepts(monkeypatch, place, code)
    cloud.codes["back"].clear()  # the vendor accepted it, but it never reached the lock
    cloud.codes["back"]["slot-keypad"] = ObservedCode("slot-keypad", name="Set at the keypad", pin=code.pin)
    _time_out(first)

    tick(now=T0 + timedelta(minutes=32))

    code.refresh_from_db()
    assert code.vendor_code_ref != "slot-keypad"
    assert len(_creates(cloud)) == 2  # sent again: the first attempt is not on the lock
    assert cloud.codes["back"]["slot-keypad"].name == "Set at the keypad"


def test_it_updates_a_landed_create_that_carries_an_older_pin_instead_of_leaving_it_behind(
    place, cloud, monkeypatch
):
    code = _code(place)
    first = _dies_after_the_vendor_accepts(monkeypatch, place, code)
    old_pin = code.pin
    _time_out(first)
    code_regenerate_pin(code=code, actor=None, now=T0 + timedelta(minutes=31, seconds=30))

    tick(now=T0 + timedelta(minutes=32))

    code.refresh_from_db()
    assert code.pin != old_pin
    assert len(_creates(cloud)) == 1 and [c.pin for c in cloud.sent("update") if c.device == "back"] == [code.pin]
    assert code.status == CodeStatus.SET and code.vendor_code_ref == cloud.slot_of[code.pk]
    assert [(c.vendor_code_ref, c.pin) for c in cloud.codes["back"].values()] == [(code.vendor_code_ref, code.pin)]


def test_it_reads_the_lock_first_only_after_an_unanswered_attempt(place, cloud):
    code = _code(place)
    for _lock in (place.native, place.jit):  # the vendor refuses: an answer, recorded
        cloud.answer("create", ProviderError(Reason.BUSY, "busy"))
    tick(now=T0)
    reads_before = len([c for c in cloud.sent("read") if c.device == "back"])
    tick(now=T0 + timedelta(minutes=2))
    code.refresh_from_db()
    assert code.status == CodeStatus.SET and len(_creates(cloud)) == 2
    assert len([c for c in cloud.sent("read") if c.device == "back"]) == reads_before == 0
