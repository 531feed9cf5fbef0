"""DESIGN §4 "Commands, one at a time per lock": the queue serves the most urgent work first, and a lock's
capacity (`max_active_codes`) is checked before a create is sent."""

from __future__ import annotations

from datetime import timedelta

from locks.dispatch import dispatch_lock
from locks.models import (
    AccessCode,
    Activity,
    CodePurpose,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    LockIssue,
)
from locks.planning import code_remove
from locks.tick import tick
from portal.encryption import encrypt_str
from portal.services import booking_create
from providers.base import Progress
from tests import factories
from tests.locks.conftest import T0


def _code(place, lock, *, name, starts, ends, status=CodeStatus.UNSET, **extra) -> AccessCode:
    return factories.AccessCodeFactory(tenant=place.tenant, lock=lock, name=name, purpose=CodePurpose.STAFF,
                                       starts_at=starts, ends_at=ends, program_at=T0, status=status, **extra)


def _sent_order() -> list[tuple[str, str]]:
    sent = Activity.objects.filter(verb="command.sent").order_by("id").select_related("command__access_code")
    return [(a.command.action, a.command.access_code.name if a.command.access_code else "-") for a in sent]


# --- urgency -------------------------------------------------------------------------------------


def test_an_urgent_create_queued_after_a_preload_is_sent_first(single, cloud):
    cloud.mode = Progress.PENDING
    preload = booking_create(tenant=single.tenant, property=single.property, guest_name="Far Future",
                             check_in=T0 + timedelta(days=2), check_out=T0 + timedelta(days=4), now=T0)
    urgent = booking_create(tenant=single.tenant, property=single.property, guest_name="Arriving Now",
                            check_in=T0 + timedelta(minutes=20), check_out=T0 + timedelta(days=1), now=T0)
    codes = {b.pk: AccessCode.objects.get(booking=b) for b in (preload, urgent)}
    assert LockCommand.objects.get(access_code=codes[preload.pk]).pk < LockCommand.objects.get(
        access_code=codes[urgent.pk]).pk

    dispatch_lock(lock_id=single.native.pk, now=T0)
    assert [call.code_id for call in cloud.sent()] == [codes[urgent.pk].pk]


def test_the_queue_serves_deletes_of_ended_codes_then_creates_by_window_and_keeps_lock_wide_work_in_line(
    single, cloud
):
    lock = single.native
    far = _code(single, lock, name="Far", starts=T0 + timedelta(days=3), ends=T0 + timedelta(days=5),
                status=CodeStatus.SETTING)
    soon = _code(single, lock, name="Soon", starts=T0 + timedelta(minutes=10), ends=T0 + timedelta(days=1),
                 status=CodeStatus.SETTING)
    ended = _code(single, lock, name="Ended", starts=T0 - timedelta(days=2), ends=T0 - timedelta(minutes=1),
                  status=CodeStatus.REMOVING, vendor_code_ref="slot-ended")
    sooner = _code(single, lock, name="Sooner", starts=T0 + timedelta(minutes=5), ends=T0 + timedelta(days=1),
                   status=CodeStatus.SETTING)
    for code, action in ((far, "create"), (soon, "create"), (ended, "delete"), (None, "read_codes"),
                         (sooner, "create")):
        factories.LockCommandFactory(tenant=single.tenant, lock=lock, access_code=code, action=action)

    dispatch_lock(lock_id=lock.pk, now=T0)
    # Everything queued before the read goes before it, most urgent first; what came after waits for it.
    assert _sent_order() == [("delete", "Ended"), ("create", "Soon"), ("create", "Far"), ("read_codes", "-"),
                             ("create", "Sooner")]


# --- capacity ------------------------------------------------------------------------------------


def _full_lock(place, capacity: int):
    lock = place.jit
    lock.requirements = {**lock.requirements, "max_active_codes": capacity}
    lock.save(update_fields=["requirements"])
    return lock


def test_a_code_that_does_not_fit_waits_with_a_slots_full_issue_and_goes_when_a_slot_frees(place, cloud):
    lock = _full_lock(place, 2)
    window = {"starts": T0 + timedelta(minutes=30), "ends": T0 + timedelta(days=2)}
    first, second, third = (_code(place, lock, name=name, **window) for name in ("Cleaner", "Owner", "Plumber"))

    tick(now=T0)
    for code in (first, second, third):
        code.refresh_from_db()
    assert (first.status, second.status) == (CodeStatus.SET, CodeStatus.SET)
    assert third.status == CodeStatus.SETTING
    assert [call.code_id for call in cloud.sent("create")] == [first.pk, second.pk]
    issue = LockIssue.objects.get(access_code=third, status=IssueStatus.OPEN)
    assert issue.kind == IssueKind.SLOTS_FULL
    assert "Cleaner" in issue.detail and "Owner" in issue.detail

    # No busy loop: the waiting create is not tried again until a later run.
    assert dispatch_lock(lock_id=lock.pk, now=T0 + timedelta(seconds=5)) == 0

    later = T0 + timedelta(hours=1)
    code_remove(code=first, now=later, note="no longer needed")
    dispatch_lock(lock_id=lock.pk, now=later)
    tick(now=later + timedelta(minutes=1))
    third.refresh_from_db()
    assert third.status == CodeStatus.SET
    assert LockIssue.objects.get(pk=issue.pk).status == IssueStatus.RESOLVED


def test_unmanaged_codes_seen_on_the_lock_take_slots(place, cloud):
    lock = _full_lock(place, 2)
    factories.LockIssueFactory(
        tenant=place.tenant, lock=lock, access_code=None, kind=IssueKind.UNMANAGED_CODE,
        data={"codes": [{"vendor_code_ref": "slot-9", "name": "Old keypad code", "pin_token": encrypt_str("4827")}]},
    )
    window = {"starts": T0 + timedelta(minutes=30), "ends": T0 + timedelta(days=2)}
    first, second = (_code(place, lock, name=name, **window) for name in ("Cleaner", "Owner"))

    tick(now=T0)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == CodeStatus.SET and second.status == CodeStatus.SETTING
    issue = LockIssue.objects.get(access_code=second, kind=IssueKind.SLOTS_FULL, status=IssueStatus.OPEN)
    assert "Old keypad code" in issue.detail and "Cleaner" in issue.detail
    assert LockCommand.objects.get(access_code=second).state == CommandState.QUEUED
    assert LockCommand.objects.filter(access_code=second, action=CommandAction.CREATE).count() == 1
