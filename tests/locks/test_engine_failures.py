"""Timeouts, lost webhooks, retries, duplicate PINs and credential failures end in the right state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from locks.actions import code_regenerate_pin, code_retry_now
from locks.conf import engine
from locks.models import AccessCode, CodeStatus, CommandState, IssueKind, IssueStatus, LockCommand, LockIssue
from locks.outcomes import event_process
from locks.planning import codes_sync_for_booking
from locks.sweep import sweep
from locks.tick import tick
from portal.services import booking_cancel, booking_create, booking_update
from providers.base import EventKind, Progress, ProviderError, Reason
from providers.models import AccountStatus, WebhookEvent
from tests.locks.conftest import T0

BACKOFF_MINUTES = engine().BACKOFF_MINUTES


def _booking(place, *, days=1):
    check_in = T0 + timedelta(days=days)
    return booking_create(tenant=place.tenant, property=place.property, guest_name="Ben Okafor",
                          check_in=check_in, check_out=check_in + timedelta(days=2), now=T0)


def _issue(code, kind):
    return LockIssue.objects.filter(access_code=code, kind=kind).first()


def test_it_retries_a_timeout_to_success(single, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(single)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    first = LockCommand.objects.get(access_code=code)
    assert first.state == CommandState.SENT

    report = sweep(now=T0 + timedelta(minutes=6))  # stale: asked about, still pending
    assert report.polled == 1 and LockCommand.objects.get(pk=first.pk).state == CommandState.SENT

    sweep(now=T0 + timedelta(minutes=31))  # past the hard limit
    first.refresh_from_db()
    retry = LockCommand.objects.get(access_code=code, attempt=2)
    assert first.state == CommandState.TIMED_OUT and first.reason == Reason.TIMEOUT
    assert retry.state == CommandState.QUEUED
    assert retry.not_before == T0 + timedelta(minutes=31 + BACKOFF_MINUTES[0])
    issue = _issue(code, IssueKind.COMMAND_TIMEOUT)
    assert issue.status == IssueStatus.OPEN

    cloud.mode = Progress.DONE
    tick(now=T0 + timedelta(minutes=31, seconds=30))  # backoff not over
    assert LockCommand.objects.get(pk=retry.pk).state == CommandState.QUEUED
    tick(now=T0 + timedelta(minutes=32))
    code.refresh_from_db()
    issue.refresh_from_db()
    assert LockCommand.objects.get(pk=retry.pk).state == CommandState.SUCCEEDED
    assert code.status in (CodeStatus.UNSET, CodeStatus.SET) and code.verification == "vendor_ack"
    assert issue.status == IssueStatus.RESOLVED


def test_it_completes_a_lost_webhook_by_the_sweep(place, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(place)
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    at = code.program_at
    tick(now=at)
    command = LockCommand.objects.get(access_code=code)
    cloud.finish(command.vendor_ref)  # the lock did it; the webhook never came

    sweep(now=at + timedelta(minutes=4))  # not stale yet
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SENT
    report = sweep(now=at + timedelta(minutes=6))
    code.refresh_from_db()
    assert report.completed >= 1
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SUCCEEDED
    assert code.status == CodeStatus.SET
    assert code.activities.filter(verb="command.succeeded", data__source="sweep").exists()


def test_it_backs_off_by_the_table_then_fails_with_an_issue(single, cloud):
    booking = _booking(single)
    code = AccessCode.objects.get(booking=booking)
    now = T0
    delays = []
    for _ in range(len(BACKOFF_MINUTES) + 1):
        cloud.answer("create", ProviderError(Reason.BUSY, "423 Locked"))
        tick(now=now)
        queued = LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED).first()
        if queued is None:
            break
        delays.append(int((queued.not_before - now).total_seconds() // 60))
        now = queued.not_before
    code.refresh_from_db()
    assert delays == list(BACKOFF_MINUTES)
    assert code.status == CodeStatus.FAILED and code.last_reason == Reason.BUSY
    issue = _issue(code, IssueKind.BUSY)
    assert issue.status == IssueStatus.OPEN and issue.occurrences == len(BACKOFF_MINUTES) + 1
    assert len(cloud.sent("create")) == len(BACKOFF_MINUTES) + 1

    code_retry_now(code=code, actor=None, now=now + timedelta(hours=1))
    tick(now=now + timedelta(hours=1))
    code.refresh_from_db()
    assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device  # preloaded, window not started
    assert LockIssue.objects.get(pk=issue.pk).status == IssueStatus.RESOLVED


def test_it_waits_at_least_retry_after_when_rate_limited(single, cloud):
    _booking(single)
    cloud.answer("create", ProviderError(Reason.RATE_LIMITED, "429", retry_after=600))
    tick(now=T0)
    queued = LockCommand.objects.get(state=CommandState.QUEUED)
    assert queued.not_before == T0 + timedelta(minutes=10)


def test_it_fails_the_code_with_an_issue_on_a_permanent_error(single, cloud):
    booking = _booking(single)
    cloud.answer("create", ProviderError(Reason.SCHEDULE_INVALID, "Schedule parameters are not valid"))
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    assert code.status == CodeStatus.FAILED
    issue = _issue(code, IssueKind.SCHEDULE_INVALID)
    assert issue.status == IssueStatus.OPEN and "Schedule parameters" in issue.detail
    assert len(cloud.sent()) == 1  # never retried by itself


def _duplicate_on_other_slot(place, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(place, days=0)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    command = LockCommand.objects.get(access_code=code)
    assert code.vendor_code_ref and code.vendor_code_ref != "slot-1"
    WebhookEvent.objects.create(
        provider_account=place.account, vendor_event_id="e1", received_at=T0,
        payload={"id": "e1", "events": [{"kind": EventKind.CODE_FAILED, "device": "back", "code_ref": "slot-1"}]},
    )
    event_process(event_id=WebhookEvent.objects.get(vendor_event_id="e1").pk, now=T0 + timedelta(seconds=30))
    return code, command


def test_it_gives_a_new_pin_for_a_duplicate_on_another_slot_when_the_guest_was_not_told(place, cloud):
    code, command = _duplicate_on_other_slot(place, cloud)
    old_pin = code.pin
    command.refresh_from_db()
    code.refresh_from_db()
    assert command.state == CommandState.FAILED and command.reason == Reason.DUPLICATE_PIN
    assert code.pin != old_pin and code.status == CodeStatus.SETTING
    retry = LockCommand.objects.get(access_code=code, state=CommandState.QUEUED)
    assert retry.action == "create" and retry.attempt == 2
    issue = _issue(code, IssueKind.DUPLICATE_PIN)
    assert issue.data["clash_code_ref"] == "slot-1" and "slot-1" in issue.detail

    cloud.mode = Progress.DONE
    tick(now=T0 + timedelta(minutes=1))
    code.refresh_from_db()
    issue.refresh_from_db()
    assert code.status == CodeStatus.SET and cloud.sent("create")[-1].pin == code.pin
    assert issue.status == IssueStatus.RESOLVED


def test_it_asks_staff_about_a_duplicate_pin_the_guest_already_has(place, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(place, days=0)
    AccessCode.objects.filter(booking=booking).update(guest_notified=True)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking, lock=place.jit)
    old_pin = code.pin
    WebhookEvent.objects.create(
        provider_account=place.account, vendor_event_id="e1", received_at=T0,
        payload={"id": "e1", "events": [{"kind": EventKind.CODE_FAILED, "device": "back", "clash": "slot-1"}]},
    )
    event_process(event_id=WebhookEvent.objects.get().pk, now=T0 + timedelta(seconds=30))
    code.refresh_from_db()
    assert code.status == CodeStatus.FAILED and code.pin == old_pin
    assert not LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED).exists()
    issue = _issue(code, IssueKind.DUPLICATE_PIN)
    assert issue.status == IssueStatus.OPEN and issue.data["clash_code_ref"] == "slot-1"

    cloud.mode = Progress.DONE
    code_regenerate_pin(code=code, actor=None, now=T0 + timedelta(minutes=5))
    tick(now=T0 + timedelta(minutes=5))
    code.refresh_from_db()
    assert code.status == CodeStatus.SET and code.pin != old_pin


def test_it_flags_the_account_and_every_lock_on_rejected_credentials(place, cloud):
    _booking(place, days=0)
    cloud.answer("create", ProviderError(Reason.AUTH_FAILED, "401 Unauthorized"))
    tick(now=T0)
    place.account.refresh_from_db()
    assert place.account.status == AccountStatus.AUTH_FAILED
    flagged = set(LockIssue.objects.filter(kind=IssueKind.AUTH_FAILED, status=IssueStatus.OPEN,
                                           access_code__isnull=True).values_list("lock_id", flat=True))
    assert flagged == {place.native.pk, place.jit.pk}


def test_it_coalesces_to_one_create_and_a_delete_cancels_it(single, cloud):
    booking = _booking(single)
    code = AccessCode.objects.get(booking=booking)
    assert LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED).count() == 1
    booking_update(booking=booking, check_out=booking.check_out + timedelta(days=1), now=T0)
    booking_update(booking=booking, guest_name="Ben O.", now=T0)
    queued = LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED)
    assert [c.action for c in queued] == ["create"]

    booking_cancel(booking=booking, now=T0)
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED
    assert LockCommand.objects.get(access_code=code).state == CommandState.CANCELLED
    tick(now=T0)
    assert cloud.sent() == []


def test_it_sends_an_update_queued_behind_an_in_flight_create_after_it(single, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(single)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    booking_update(booking=booking, guest_name="Ben O.", now=T0 + timedelta(minutes=1))
    booking_update(booking=booking, check_out=booking.check_out + timedelta(days=1), now=T0 + timedelta(minutes=1))
    assert list(LockCommand.objects.filter(access_code=code).values_list("action", "state")) == [
        ("create", CommandState.SENT), ("update", CommandState.QUEUED)]
    tick(now=T0 + timedelta(minutes=2))
    assert len(cloud.sent()) == 1  # one in flight per lock

    cloud.mode = Progress.DONE
    cloud.finish(cloud.sent()[0].ref)
    sweep(now=T0 + timedelta(minutes=10))
    code.refresh_from_db()
    assert [c.action for c in cloud.sent("create") + cloud.sent("update")] == ["create", "update"]
    assert cloud.codes["front"][code.vendor_code_ref].name == "Ben O."


def test_it_counts_a_delete_of_a_code_the_lock_lacks_as_removed(single, cloud):
    booking = _booking(single)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    cloud.answer("delete", ProviderError(Reason.NOT_FOUND_ON_DEVICE, "404"))
    booking_cancel(booking=booking, now=T0 + timedelta(minutes=1))
    tick(now=T0 + timedelta(minutes=1))
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED


def test_it_does_not_resurrect_a_failed_code_on_sync(single, cloud):
    booking = _booking(single)
    cloud.answer("create", ProviderError(Reason.INVALID_PIN, "bad"))
    tick(now=T0)
    codes_sync_for_booking(booking=booking, now=T0 + timedelta(minutes=1))
    assert AccessCode.objects.filter(booking=booking).count() == 1
    assert AccessCode.objects.get(booking=booking).status == CodeStatus.FAILED


@pytest.mark.parametrize("reason", [Reason.NACK, Reason.VENDOR_ERROR, Reason.DEVICE_OFFLINE])
def test_it_retries_transient_reasons(single, cloud, reason):
    _booking(single)
    cloud.answer("create", ProviderError(reason, "x"))
    tick(now=T0)
    assert LockCommand.objects.filter(state=CommandState.QUEUED, attempt=2).exists()


def test_it_does_not_retry_a_create_that_failed_while_the_code_is_being_removed(single, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(single)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    create = LockCommand.objects.get(access_code=code)
    booking_cancel(booking=booking, now=T0 + timedelta(minutes=1))
    WebhookEvent.objects.create(
        provider_account=single.account, vendor_event_id="e1", received_at=T0,
        payload={"id": "e1", "events": [{"kind": EventKind.COMMAND_FAILED, "device": "front",
                                         "ref": create.vendor_ref, "reason": Reason.BUSY}]},
    )
    event_process(event_id=WebhookEvent.objects.get().pk, now=T0 + timedelta(minutes=2))
    queued = LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED)
    assert [c.action for c in queued] == ["delete"]
    cloud.mode = Progress.DONE
    tick(now=T0 + timedelta(minutes=2))
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED


def test_it_keeps_a_code_setting_until_the_update_behind_its_create_is_confirmed(single, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(single, days=0)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    booking_update(booking=booking, guest_name="Ben O.", now=T0 + timedelta(minutes=1))
    create = LockCommand.objects.get(access_code=code, action="create")
    cloud.finish(create.vendor_ref)
    sweep(now=T0 + timedelta(minutes=6))  # create confirmed; the update goes out and waits
    code.refresh_from_db()
    update = LockCommand.objects.get(access_code=code, action="update")
    assert code.status == CodeStatus.SETTING and update.state == CommandState.SENT
    cloud.finish(update.vendor_ref)
    sweep(now=T0 + timedelta(minutes=12))
    code.refresh_from_db()
    assert code.status == CodeStatus.SET


def test_it_catches_a_pin_that_no_longer_fits_the_lock_before_sending(single, cloud):
    booking = _booking(single)
    single.native.requirements = {**single.native.requirements, "code_lengths": [4]}  # re-imported device
    single.native.save()
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    command = LockCommand.objects.get(access_code=code)
    assert command.state == CommandState.FAILED and command.reason == Reason.INVALID_PIN
    assert "before sending" in command.vendor_detail
    assert code.status == CodeStatus.FAILED and _issue(code, IssueKind.INVALID_PIN).status == IssueStatus.OPEN
    assert cloud.sent() == []

    code_regenerate_pin(code=code, actor=None, now=T0 + timedelta(minutes=1))
    tick(now=T0 + timedelta(minutes=1))
    code.refresh_from_db()
    assert len(code.pin) == 4 and code.status == CodeStatus.UNSET and code.is_scheduled_on_device


def test_it_takes_the_pin_the_lock_chooses(single, cloud):
    single.native.requirements = {**single.native.requirements, "constraints": ["cannot_specify_pin_code"]}
    single.native.save()
    booking = _booking(single)
    code = AccessCode.objects.get(booking=booking)
    assert code.pin == ""
    tick(now=T0)
    code.refresh_from_db()
    assert code.pin == cloud.codes["front"][code.vendor_code_ref].pin and len(code.pin) == 6


def test_it_asks_the_vendor_at_once_when_staff_retry_a_code_in_flight(single, cloud):
    cloud.mode = Progress.PENDING
    booking = _booking(single, days=0)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    command = LockCommand.objects.get(access_code=code)
    code_retry_now(code=code, actor=None, now=T0 + timedelta(minutes=1))  # vendor: still pending
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SENT
    cloud.finish(command.vendor_ref)
    code_retry_now(code=code, actor=None, now=T0 + timedelta(minutes=2))
    code.refresh_from_db()
    assert code.status == CodeStatus.SET
    assert [c.action for c in cloud.calls] == ["create", "status", "status"]


def test_it_flags_a_code_still_waiting_behind_another_command_when_its_window_starts(place, cloud):
    """Back-to-back stays on a just-in-time lock; the first one's command hangs (no webhook, no sweep
    yet). When the second code's window starts it is still queued behind it: an issue says so."""
    from locks.models import IssueKind, IssueStatus, LockIssue
    from locks.tick import tick
    from portal.services import booking_create
    from tests.locks.conftest import T0

    cloud.mode = Progress.PENDING
    check_in = T0 + timedelta(days=2)
    first, second = (
        booking_create(tenant=place.tenant, property=place.property, guest_name=name,
                       check_in=check_in + timedelta(days=n), check_out=check_in + timedelta(days=n + 1), now=T0)
        for n, name in enumerate(("First Guest", "Second Guest"))
    )
    late = AccessCode.objects.get(booking=second, lock=place.jit)
    tick(now=late.program_at)
    assert not LockIssue.objects.filter(access_code=late).exists()

    tick(now=late.starts_at - timedelta(minutes=1))
    assert not LockIssue.objects.filter(access_code=late).exists()  # not late yet

    tick(now=late.starts_at + timedelta(minutes=1))
    late.refresh_from_db()
    issue = LockIssue.objects.get(access_code=late, status=IssueStatus.OPEN)
    assert late.status == CodeStatus.SETTING
    assert issue.kind == IssueKind.BUSY and "waiting behind command" in issue.detail
    first_code = AccessCode.objects.get(booking=first, lock=place.jit)
    assert first_code.name in issue.detail

    tick(now=late.starts_at + timedelta(minutes=2))  # flagged once, not on every tick
    assert LockIssue.objects.get(pk=issue.pk).occurrences == 1


def test_it_stops_regenerating_when_every_new_pin_is_called_a_duplicate(place, cloud):
    MAX_DUPLICATE_REGENERATIONS = engine().MAX_DUPLICATE_REGENERATIONS

    code, _ = _duplicate_on_other_slot(place, cloud)
    now = T0 + timedelta(minutes=1)
    pins_tried = {code.pin}
    for n in range(MAX_DUPLICATE_REGENERATIONS + 2):
        tick(now=now)
        code.refresh_from_db()
        pins_tried.add(code.pin)
        if code.status == CodeStatus.FAILED:
            break
        WebhookEvent.objects.create(
            provider_account=place.account, vendor_event_id=f"again-{n}", received_at=now,
            payload={"id": f"again-{n}", "events": [{"kind": EventKind.CODE_FAILED, "device": "back",
                                                     "code_ref": "slot-1"}]},
        )
        event_process(event_id=WebhookEvent.objects.get(vendor_event_id=f"again-{n}").pk, now=now)
        now += timedelta(minutes=1)
    code.refresh_from_db()
    assert code.status == CodeStatus.FAILED and code.last_reason == Reason.DUPLICATE_PIN
    assert len(pins_tried) == MAX_DUPLICATE_REGENERATIONS + 1  # the first PIN and three fresh ones
    assert not LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED).exists()
    assert _issue(code, IssueKind.DUPLICATE_PIN).status == IssueStatus.OPEN
