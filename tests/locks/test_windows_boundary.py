"""DESIGN §4 "Windows are a security boundary": overstays are flagged, late codes are flagged on time and
only when they are late, and a stay moved later takes its code off a just-in-time lock until its time."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.urls import reverse

from locks.commands import command_fail
from locks.dispatch import dispatch_lock
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    LockIssue,
)
from locks.selectors import attention_queue
from locks.tick import tick
from locks.troubleshooting import playbook_for
from portal.alerts import urgent_issues
from portal.models import Booking
from portal.services import booking_cancel, booking_create, booking_update
from providers.base import EventKind, Progress, Reason
from providers.models import WebhookEvent
from tests import factories
from tests.conftest import client_for
from tests.locks.conftest import T0


def _book(place, *, check_in, nights: int = 2, now=T0) -> Booking:
    return booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa",
                          check_in=check_in, check_out=check_in + timedelta(days=nights), now=now)


def _webhook(place, now, *events) -> None:
    from locks.outcomes import event_process

    event = WebhookEvent.objects.create(
        provider_account=place.account, vendor_event_id=f"evt-{WebhookEvent.objects.count()}", received_at=now,
        payload={"id": "x", "events": [dict(e) for e in events]},
    )
    event_process(event_id=event.pk, now=now)


def _overstay(code) -> LockIssue | None:
    return LockIssue.objects.filter(access_code=code, kind="overstay", status=IssueStatus.OPEN).first()


# --- overstay ------------------------------------------------------------------------------------


def test_it_flags_a_code_whose_delete_is_not_confirmed_past_the_grace_and_resolves_it_when_gone(place, cloud):
    booking = _book(place, check_in=T0 + timedelta(days=1))
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    tick(now=code.program_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.SET

    cloud.mode = Progress.PENDING  # the delete is accepted and never confirmed
    tick(now=code.ends_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVING
    tick(now=code.ends_at + timedelta(minutes=4))
    assert _overstay(code) is None  # inside the grace: the delete is on its way

    tick(now=code.ends_at + timedelta(minutes=6))
    issue = _overstay(code)
    assert issue is not None and issue.lock == place.jit
    later = code.ends_at + timedelta(minutes=7)
    queue = attention_queue(tenant=place.tenant, now=later)
    assert queue[0].kind == "code_overstay"  # the most urgent thing there is
    assert code in [item.code for item in queue if item.kind == "code_overstay"]
    assert issue in list(urgent_issues(tenant=place.tenant, now=later))

    tick(now=code.ends_at + timedelta(minutes=8))  # flagged once, not once a minute
    assert LockIssue.objects.filter(access_code=code, kind="overstay").count() == 1

    delete = LockCommand.objects.get(access_code=code, action=CommandAction.DELETE)
    _webhook(place, later, {"kind": EventKind.CODE_REMOVED, "device": "back", "ref": delete.vendor_ref})
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED
    assert _overstay(code) is None
    assert LockIssue.objects.get(pk=issue.pk).status == IssueStatus.RESOLVED


def test_it_flags_a_failed_delete_that_leaves_the_code_on_the_lock(place, cloud):
    booking = _book(place, check_in=T0 + timedelta(days=1))
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    tick(now=code.program_at)
    cloud.mode = Progress.PENDING
    tick(now=code.ends_at)
    delete = LockCommand.objects.get(access_code=code, action=CommandAction.DELETE)
    command_fail(command=delete, reason=Reason.INVALID_PIN, detail="rejected", now=code.ends_at + timedelta(minutes=1))
    code.refresh_from_db()
    assert code.status == CodeStatus.FAILED and code.vendor_code_ref

    tick(now=code.ends_at + timedelta(minutes=6))
    assert _overstay(code) is not None


def test_the_overstay_playbook_says_what_to_do():
    playbook = playbook_for("overstay")
    assert playbook.kind == IssueKind.OVERSTAY
    assert playbook.title == "Still on the lock after check-out"
    assert set(playbook.actions) >= {"retry_now", "reconcile"}
    assert any("vendor" in step.lower() for step in playbook.steps)


# --- late flags ----------------------------------------------------------------------------------


def test_a_command_younger_than_the_vendors_normal_latency_is_on_its_way_not_an_issue(place, cloud):
    cloud.mode = Progress.PENDING
    # Booked 15 minutes before check-in: the window (30 minutes before check-in) has already begun.
    booking = _book(place, check_in=T0 + timedelta(minutes=15))
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    dispatch_lock(lock_id=place.jit.pk, now=T0)
    assert LockCommand.objects.get(access_code=code).state == CommandState.SENT

    tick(now=T0 + timedelta(seconds=20))
    assert not LockIssue.objects.filter(access_code=code, status=IssueStatus.OPEN).exists()

    # Past the simulator's normal latency (30 s) and still not confirmed: now it is late, within a minute.
    tick(now=T0 + timedelta(seconds=90))
    issue = LockIssue.objects.get(access_code=code, status=IssueStatus.OPEN)
    assert issue.kind == IssueKind.COMMAND_TIMEOUT


@override_settings(LOCKSTEP={"NORMAL_LATENCY_SECONDS": {"simulator": 600}})
def test_the_normal_latency_is_a_per_vendor_setting(place, cloud):
    cloud.mode = Progress.PENDING
    booking = _book(place, check_in=T0 + timedelta(minutes=15))
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    dispatch_lock(lock_id=place.jit.pk, now=T0)
    tick(now=T0 + timedelta(seconds=90))
    assert not LockIssue.objects.filter(access_code=code, status=IssueStatus.OPEN).exists()
    tick(now=T0 + timedelta(minutes=11))
    assert LockIssue.objects.filter(access_code=code, status=IssueStatus.OPEN).exists()


def test_a_code_not_confirmed_by_its_start_is_flagged_within_a_minute_even_with_no_worker(place, cloud):
    booking = _book(place, check_in=T0 + timedelta(days=1))
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    nobody = lambda lock_id: None  # noqa: E731 - the workers are all dead: nothing is ever dispatched
    tick(now=code.program_at, dispatch=nobody)
    tick(now=code.starts_at - timedelta(seconds=1), dispatch=nobody)
    assert not LockIssue.objects.filter(access_code=code, status=IssueStatus.OPEN).exists()
    tick(now=code.starts_at + timedelta(seconds=59), dispatch=nobody)
    assert LockIssue.objects.filter(access_code=code, status=IssueStatus.OPEN).exists()


def test_a_late_flag_is_our_inference_and_a_vendor_failure_quotes_the_vendor(place, cloud):
    cloud.mode = Progress.PENDING
    booking = _book(place, check_in=T0 + timedelta(minutes=15))
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    dispatch_lock(lock_id=place.jit.pk, now=T0)
    tick(now=T0 + timedelta(minutes=2))
    late = LockIssue.objects.get(access_code=code, status=IssueStatus.OPEN)
    assert late.data["our_inference"] and not late.data.get("vendor_said")

    command = LockCommand.objects.get(access_code=code)
    command_fail(command=command, reason=Reason.NACK, detail="Nack from lock", now=T0 + timedelta(minutes=3))
    nack = LockIssue.objects.get(access_code=code, kind=IssueKind.NACK, status=IssueStatus.OPEN)
    assert nack.data["vendor_said"] == "Nack from lock"
    assert not nack.data.get("our_inference")


def test_the_issue_panel_labels_what_the_vendor_said_and_what_lockstep_inferred(world, client):
    factories.LockIssueFactory(tenant=world.seaside, lock=world.lock, access_code=None, kind="busy",
                               detail="Waiting behind command #4", data={"our_inference": "Waiting behind command #4"})
    factories.LockIssueFactory(tenant=world.seaside, lock=world.lock, access_code=None, kind="nack",
                               detail="Nack", data={"vendor_said": "Nack"})
    html = client_for(client, world.alice).get(
        reverse("locks:lock_detail", args=["seaside", world.lock.pk])).content.decode()
    assert "<summary>What the vendor said</summary>Nack" in html  # the vendor's words, behind their toggle
    assert "<summary>What the vendor said</summary>Waiting behind" not in html
    assert "Lockstep’s inference:</strong> Waiting behind command #4" in html


# --- a stay moved later --------------------------------------------------------------------------


def test_a_stay_moved_later_takes_the_code_off_a_just_in_time_lock_until_its_new_time(place, cloud):
    booking = _book(place, check_in=T0 + timedelta(hours=2))
    jit = AccessCode.objects.get(booking=booking, lock=place.jit)
    native = AccessCode.objects.get(booking=booking, lock=place.native)
    tick(now=jit.program_at)
    jit.refresh_from_db()
    assert jit.status == CodeStatus.SET and cloud.codes["back"]

    moved = jit.program_at + timedelta(minutes=1)
    booking_update(booking=booking, check_in=booking.check_in + timedelta(days=30),
                   check_out=booking.check_out + timedelta(days=30), now=moved)
    dispatch_lock(lock_id=place.jit.pk, now=moved)
    dispatch_lock(lock_id=place.native.pk, now=moved)
    jit.refresh_from_db()
    native.refresh_from_db()
    assert cloud.codes["back"] == {}  # not on the door for the 30 days before the stay
    assert jit.status == CodeStatus.UNSET and not jit.vendor_code_ref
    assert jit.program_at == jit.starts_at - timedelta(minutes=60)
    assert [c.action for c in cloud.sent() if c.device == "front"][-1] == "update"  # the schedule moved

    tick(now=jit.program_at)
    jit.refresh_from_db()
    assert jit.status == CodeStatus.SET and cloud.codes["back"]
    assert [c.action for c in cloud.sent() if c.device == "back"] == ["create", "delete", "create"]


def test_a_stay_moved_later_then_cancelled_does_not_come_back(place, cloud):
    booking = _book(place, check_in=T0 + timedelta(hours=2))
    jit = AccessCode.objects.get(booking=booking, lock=place.jit)
    tick(now=jit.program_at)
    cloud.mode = Progress.PENDING
    moved = jit.program_at + timedelta(minutes=1)
    booking_update(booking=booking, check_in=booking.check_in + timedelta(days=30),
                   check_out=booking.check_out + timedelta(days=30), now=moved)
    dispatch_lock(lock_id=place.jit.pk, now=moved)
    booking_cancel(booking=Booking.objects.get(pk=booking.pk), now=moved)
    delete = LockCommand.objects.get(access_code=jit, action=CommandAction.DELETE)
    _webhook(place, moved, {"kind": EventKind.CODE_REMOVED, "device": "back", "ref": delete.vendor_ref})
    jit.refresh_from_db()
    assert jit.status == CodeStatus.REMOVED
    tick(now=jit.program_at + timedelta(minutes=1))
    assert [c.action for c in cloud.sent() if c.device == "back"] == ["create", "delete"]
