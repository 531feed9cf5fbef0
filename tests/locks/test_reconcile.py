"""Reconciliation: what the vendor reports on a lock against what should be there."""

from __future__ import annotations

import json
from datetime import timedelta

from locks.actions import issue_adopt_code, issue_remove_unmanaged_code, lock_delete_all_and_reprogram
from locks.dispatch import dispatch_lock
from locks.models import (
    AccessCode,
    Activity,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    LockIssue,
    Verification,
)
from locks.reconcile import locks_due_for_reconcile
from locks.sweep import sweep
from locks.tick import tick
from portal.services import booking_create
from providers.base import ObservedCode
from tests.locks.conftest import T0, reconcile_now


def _set_code(place, cloud):
    check_in = T0 + timedelta(hours=1)
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Chloe",
                             check_in=check_in, check_out=check_in + timedelta(days=2), now=T0)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    tick(now=code.starts_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.SET
    return code


def test_it_verifies_a_matching_code_by_read_back(single, cloud):
    code = _set_code(single, cloud)
    assert code.verification == Verification.VENDOR_ACK
    report = reconcile_now(lock=single.native, now=T0 + timedelta(hours=2))
    code.refresh_from_db()
    single.native.refresh_from_db()
    assert report.matched == [code.pk]
    assert code.verification == Verification.READ_BACK
    assert single.native.last_reconciled_at == T0 + timedelta(hours=2)


def test_it_keeps_vendor_ack_on_a_lock_that_cannot_be_read(single, cloud):
    code = _set_code(single, cloud)
    cloud.readable = False
    report = reconcile_now(lock=single.native, now=T0 + timedelta(hours=2))
    code.refresh_from_db()
    assert not report.readable and code.verification == Verification.VENDOR_ACK
    single.native.refresh_from_db()
    assert single.native.last_reconciled_at == T0 + timedelta(hours=2)


def test_it_opens_a_desync_issue_found_by_reconciliation(single, cloud):
    code = _set_code(single, cloud)
    slot = code.vendor_code_ref
    cloud.codes["front"][slot] = ObservedCode(slot, name=code.name, pin="999111")
    reconcile_now(lock=single.native, now=T0 + timedelta(hours=2))
    issue = LockIssue.objects.get(access_code=code, kind=IssueKind.DESYNC)
    assert issue.status == IssueStatus.OPEN and issue.data["vendor_code_ref"] == slot

    lock_delete_all_and_reprogram(lock=single.native, actor=None, now=T0 + timedelta(hours=3))
    tick(now=T0 + timedelta(hours=3))
    code.refresh_from_db()
    issue.refresh_from_db()
    assert code.status == CodeStatus.SET
    assert cloud.codes["front"][code.vendor_code_ref].pin == code.pin
    assert issue.status == IssueStatus.RESOLVED
    reconcile_now(lock=single.native, now=T0 + timedelta(hours=4))
    code.refresh_from_db()
    assert code.verification == Verification.READ_BACK


def test_it_pushes_a_code_missing_from_the_lock_again(single, cloud):
    code = _set_code(single, cloud)
    cloud.codes["front"].clear()
    report = reconcile_now(lock=single.native, now=T0 + timedelta(hours=2))
    code.refresh_from_db()
    # The read queued the create again, and the same dispatcher run sent it behind the read.
    assert report.repushed == [code.pk]
    assert [c.action for c in LockCommand.objects.filter(access_code=code).order_by("id")] == ["create", "create"]
    assert code.status == CodeStatus.SET and code.vendor_code_ref in cloud.codes["front"]


def test_it_reports_a_foreign_code_that_can_be_adopted(single, cloud):
    _set_code(single, cloud)
    cloud.codes["front"]["slot-99"] = ObservedCode("slot-99", name="Cleaner", pin="246810")
    reconcile_now(lock=single.native, now=T0 + timedelta(hours=2))
    issue = LockIssue.objects.get(kind=IssueKind.UNMANAGED_CODE, status=IssueStatus.OPEN)
    assert issue.data["codes"][0]["vendor_code_ref"] == "slot-99"
    assert "246810" not in json.dumps(issue.data)  # a foreign PIN is encrypted at rest like ours

    [adopted] = issue_adopt_code(issue=issue, actor=None, now=T0 + timedelta(hours=3))
    assert adopted.purpose == "staff" and adopted.pin == "246810" and adopted.status == CodeStatus.SET
    reconcile_now(lock=single.native, now=T0 + timedelta(hours=4))
    assert not LockIssue.objects.filter(kind=IssueKind.UNMANAGED_CODE, status=IssueStatus.OPEN).exists()


def test_it_removes_a_foreign_code_on_request(single, cloud):
    _set_code(single, cloud)
    cloud.codes["front"]["slot-99"] = ObservedCode("slot-99", name="Old guest", pin="246810")
    reconcile_now(lock=single.native, now=T0 + timedelta(hours=2))
    issue = LockIssue.objects.get(kind=IssueKind.UNMANAGED_CODE, status=IssueStatus.OPEN)
    queued = issue_remove_unmanaged_code(issue=issue, actor=None, now=T0 + timedelta(hours=3))
    # Queued, not sent from the request: a removal, then a read that confirms it.
    assert [(c.action, c.target_ref) for c in queued] == [("remove_code", "slot-99"), ("read_codes", "")]
    assert "slot-99" in cloud.codes["front"]
    dispatch_lock(lock_id=single.native.pk, now=T0 + timedelta(hours=3))
    issue.refresh_from_db()
    assert issue.status == IssueStatus.RESOLVED and "slot-99" not in cloud.codes["front"]
    assert [c.state for c in LockCommand.objects.filter(pk__in=[c.pk for c in queued])] == ["succeeded"] * 2


def test_it_leaves_codes_with_work_in_flight_alone(single, cloud):
    from providers.base import Progress

    cloud.mode = Progress.PENDING
    check_in = T0 + timedelta(hours=1)
    booking_create(tenant=single.tenant, property=single.property, guest_name="Dev", check_in=check_in,
                   check_out=check_in + timedelta(days=1), now=T0)
    tick(now=T0)
    # The read waits its turn behind the create in flight: no read races a write on the lock.
    assert reconcile_now(lock=single.native, now=T0 + timedelta(minutes=1)) is None
    read = LockCommand.objects.get(action="read_codes")
    assert read.state == CommandState.QUEUED and len(cloud.sent()) == 1


def test_it_picks_old_and_requested_locks_for_reconciliation(place):
    place.native.last_reconciled_at = T0 - timedelta(hours=7)
    place.native.save()
    place.jit.last_reconciled_at = T0 - timedelta(hours=1)
    place.jit.save()
    assert locks_due_for_reconcile(now=T0) == [place.native.pk]
    place.jit.reconcile_requested = True
    place.jit.save()
    assert set(locks_due_for_reconcile(now=T0)) == {place.native.pk, place.jit.pk}


def test_a_check_requested_during_a_command_runs_once_it_is_settled(single, cloud):
    from providers.base import Progress

    cloud.mode = Progress.PENDING
    check_in = T0 + timedelta(hours=1)
    booking_create(tenant=single.tenant, property=single.property, guest_name="Gus", check_in=check_in,
                   check_out=check_in + timedelta(days=1), now=T0)
    tick(now=T0)
    command = LockCommand.objects.get()
    cloud.finish(command.vendor_ref)  # on the lock; no webhook, no poll yet
    assert reconcile_now(lock=single.native, now=T0 + timedelta(minutes=2)) is None  # waits for the create
    sweep(now=T0 + timedelta(minutes=6))  # the sweeper settles the create, then the lock's queue moves on
    command.refresh_from_db()
    code = AccessCode.objects.get()
    assert command.state == CommandState.SUCCEEDED
    assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device  # preloaded; window not started
    assert LockCommand.objects.get(action="read_codes").state == CommandState.SUCCEEDED
    assert code.verification == Verification.READ_BACK
    assert code.verification == Verification.READ_BACK


def _preloaded_code(place):
    """A stay three days out, preloaded on the natively scheduling lock with its window."""
    check_in = T0 + timedelta(days=2)
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Chloe",
                             check_in=check_in, check_out=check_in + timedelta(days=2), now=T0)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking, lock=place.native)
    assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device
    return code


def test_a_lock_holding_another_window_for_our_code_gets_ours_again(single, cloud):
    """Found by `simulate --workers` (harsh faults, seed 11, code 455): a stay moved, the vendor said the
    update was done but the lock kept the old window (the `desync` fault). Reads compared the PIN only, so
    every read "matched"; the lock opened for the old window and dropped the code at its old end while the
    portal said `set`."""
    code = _preloaded_code(single)
    slot = code.vendor_code_ref
    cloud.codes["front"][slot] = ObservedCode(slot, name=code.name, pin=code.pin,
                                              starts_at=code.starts_at - timedelta(hours=3),
                                              ends_at=code.ends_at - timedelta(hours=3))

    report = reconcile_now(lock=single.native, now=T0 + timedelta(hours=1))

    assert report.rescheduled == [code.pk] and report.matched == []
    assert [c.action for c in LockCommand.objects.filter(access_code=code).order_by("id")] == ["create", "update"]
    held = cloud.codes["front"][slot]
    assert (held.starts_at, held.ends_at) == (code.starts_at, code.ends_at)
    assert Activity.objects.filter(verb="code.window_differs", access_code=code).exists()


def test_a_window_the_vendor_rounded_within_the_hour_matches(single, cloud):
    code = _preloaded_code(single)
    slot = code.vendor_code_ref
    cloud.codes["front"][slot] = ObservedCode(slot, name=code.name, pin=code.pin,
                                              starts_at=code.starts_at - timedelta(minutes=35),
                                              ends_at=code.ends_at + timedelta(minutes=25))

    report = reconcile_now(lock=single.native, now=T0 + timedelta(hours=1))

    assert report.matched == [code.pk] and report.rescheduled == []
    assert [c.action for c in LockCommand.objects.filter(access_code=code)] == ["create"]
