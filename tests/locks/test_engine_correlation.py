"""Truth under fire (DESIGN §4 "Outcomes arrive four ways"): an event about another code or another command
never completes the command in flight, even between its claim and the vendor's answer; what a command sends
is recorded when it is claimed."""

from __future__ import annotations

from datetime import timedelta

from locks.models import (
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    LockCommand,
    LockIssue,
)
from locks.outcomes import event_process
from locks.tick import tick
from portal.models import Booking
from portal.services import booking_create, booking_update
from providers.base import EventKind, Progress, Reason
from providers.models import WebhookEvent
from tests.locks.conftest import T0


def _book(place, *, days: int, nights: int = 1) -> Booking:
    check_in = T0 + timedelta(days=days)
    return booking_create(tenant=place.tenant, property=place.property, guest_name=f"Guest {days}",
                          check_in=check_in, check_out=check_in + timedelta(days=nights), now=T0)


def _webhook(place, now, **event) -> str:
    stored = WebhookEvent.objects.create(
        provider_account=place.account, vendor_event_id=f"evt-{WebhookEvent.objects.count()}", received_at=now,
        payload={"id": "x", "events": [event]},
    )
    return event_process(event_id=stored.pk, now=now)


def _preloaded(single) -> AccessCode:
    """A code preloaded on the natively scheduling lock, its window about to start."""
    code = AccessCode.objects.get(booking=_book(single, days=1), lock=single.native)
    tick(now=T0)
    code.refresh_from_db()
    assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device and code.vendor_code_ref
    return code


def test_it_keeps_a_create_in_flight_when_another_codes_window_start_arrives_before_its_answer(single, cloud):
    earlier = _preloaded(single)
    second = AccessCode.objects.get(booking=_book(single, days=2), lock=single.native)
    third = AccessCode.objects.get(booking=_book(single, days=4), lock=single.native)
    now = earlier.starts_at
    cloud.mode = Progress.PENDING
    # The lock starts the earlier code's window while our create is with the vendor (no answer yet).
    cloud.meanwhile.append(lambda: _webhook(single, now, kind=EventKind.CODE_SET, device="front",
                                            code_ref=earlier.vendor_code_ref))

    tick(now=now)

    create = LockCommand.objects.get(access_code=second)
    second.refresh_from_db()
    earlier.refresh_from_db()
    assert create.state == CommandState.SENT  # still pending on the lock: the event was not about it
    assert second.status == CodeStatus.SETTING and second.vendor_code_ref == cloud.slot_of[second.pk]
    assert earlier.status == CodeStatus.SET  # the event was the earlier code's news
    # Nothing else goes to the lock while the create is pending there: one operation at a time.
    assert LockCommand.objects.get(access_code=third).state == CommandState.QUEUED
    assert [call.code_id for call in cloud.sent("create")] == [earlier.pk, second.pk]


def test_it_takes_a_failure_naming_another_live_codes_slot_before_its_answer_as_a_pin_clash(single, cloud):
    earlier = _preloaded(single)
    second = AccessCode.objects.get(booking=_book(single, days=2), lock=single.native)
    cloud.mode = Progress.PENDING
    cloud.meanwhile.append(lambda: _webhook(single, T0, kind=EventKind.CODE_FAILED, device="front",
                                            code_ref=earlier.vendor_code_ref))

    tick(now=T0 + timedelta(minutes=1))

    create = LockCommand.objects.get(access_code=second, attempt=1)
    assert create.state == CommandState.FAILED and create.reason == Reason.DUPLICATE_PIN
    assert LockCommand.objects.get(access_code=second, attempt=2).state in (CommandState.QUEUED,
                                                                              CommandState.SENT)


def test_it_does_not_complete_a_command_with_a_late_event_of_an_earlier_command(single, cloud):
    earlier = _preloaded(single)
    first_ref = LockCommand.objects.get(access_code=earlier).vendor_ref
    second = AccessCode.objects.get(booking=_book(single, days=2), lock=single.native)
    cloud.mode = Progress.PENDING
    cloud.meanwhile.append(lambda: _webhook(single, T0, kind=EventKind.COMMAND_SUCCEEDED, device="front",
                                            ref=first_ref))

    tick(now=T0 + timedelta(minutes=1))

    assert LockCommand.objects.get(access_code=second).state == CommandState.SENT


def test_it_records_what_a_command_sends_when_it_claims_it(single, cloud):
    code = _preloaded(single)
    cloud.mode = Progress.PENDING
    booking_update(booking=code.booking, check_out=code.booking.check_out + timedelta(days=1), now=T0)

    tick(now=T0 + timedelta(minutes=1))

    code.refresh_from_db()
    update = LockCommand.objects.get(access_code=code, action=CommandAction.UPDATE)
    assert update.state == CommandState.SENT
    assert (update.sent_code_ref, update.sent_name, update.sent_pin_fingerprint) == (
        code.vendor_code_ref, code.name, code.pin_fingerprint)
    assert (update.sent_starts_at, update.sent_ends_at) == (code.starts_at, code.ends_at)


def test_it_judges_an_event_by_the_pin_the_command_sent(single, cloud):
    code = _preloaded(single)
    cloud.mode = Progress.PENDING
    booking_update(booking=code.booking, check_out=code.booking.check_out + timedelta(days=1), now=T0)
    tick(now=T0 + timedelta(minutes=1))
    update = LockCommand.objects.get(access_code=code, action=CommandAction.UPDATE)

    # A resent report of the code under another PIN (not what this update sent) is not its outcome.
    _webhook(single, T0 + timedelta(minutes=2), kind=EventKind.CODE_SCHEDULED, device="front",
             code_ref=code.vendor_code_ref, pin="975318" if code.pin != "975318" else "864213")
    assert LockCommand.objects.get(pk=update.pk).state == CommandState.SENT

    _webhook(single, T0 + timedelta(minutes=3), kind=EventKind.CODE_SCHEDULED, device="front",
             code_ref=code.vendor_code_ref, pin=code.pin)
    assert LockCommand.objects.get(pk=update.pk).state == CommandState.SUCCEEDED


def test_a_late_answer_to_an_ended_command_does_not_rewrite_the_codes_slot(single, cloud):
    """Seen with real workers: a create's answer arrived after the sweeper had timed it out and a retry had
    put the code in another slot; the late answer rewrote the code's slot, the delete then went to a slot
    the lock did not hold ("not found"), and the guest's code stayed on the door."""
    from locks.commands import command_acknowledge, command_time_out

    cloud.mode = Progress.PENDING
    code = AccessCode.objects.get(booking=_book(single, days=0, nights=1), lock=single.native)
    tick(now=T0)
    first = LockCommand.objects.get(state=CommandState.SENT)
    assert command_time_out(command=first, now=T0 + timedelta(minutes=31))
    AccessCode.objects.filter(pk=code.pk).update(vendor_code_ref="slot-on-the-lock")  # the retry's slot

    command_acknowledge(command=first, vendor_ref="late-1", vendor_code_ref="slot-of-the-late-answer", pin="",
                        summary={}, now=T0 + timedelta(minutes=32))

    code.refresh_from_db()
    first.refresh_from_db()
    assert code.vendor_code_ref == "slot-on-the-lock"
    assert first.vendor_ref == "late-1"  # the answer is kept on its own command


def test_a_late_failure_of_an_ended_command_is_not_taken_as_a_pin_clash_by_the_next_one(single, cloud):
    """Seen with real workers (`simulate --workers 2 --kill-workers --latency 1000 --seed 7`, 8 bookings): the
    sweeper found code A's create refused (nack) and the next code's create went out; the lock's own report
    of A's failure, delivered late and naming A's slot, was read as "the PIN you sent clashes with that slot".
    The new create failed as a duplicate while it was still pending on the lock (it landed there later), and
    the next create went out on top of it: two operations at once on one lock. A slot whose code is not on
    the lock holds no PIN to clash with; its failure is that code's news."""
    from locks.commands import command_complete
    from providers.base import Outcome

    cloud.mode = Progress.PENDING
    first = AccessCode.objects.get(booking=_book(single, days=1), lock=single.native)
    second = AccessCode.objects.get(booking=_book(single, days=2), lock=single.native)
    tick(now=T0)
    sent = LockCommand.objects.get(state=CommandState.SENT)
    assert sent.access_code_id == first.pk
    assert command_complete(command=sent, outcome=Outcome(Progress.FAILED, reason=Reason.NACK, detail="nack"),
                            now=T0 + timedelta(minutes=5), source="sweep")
    # A's retry waits (say, for its backoff); B's create goes next, and while it is with the vendor the lock's
    # own report of A's refusal arrives, late.
    LockCommand.objects.filter(access_code=first, state=CommandState.QUEUED).update(
        not_before=T0 + timedelta(hours=1))
    cloud.meanwhile.append(lambda: _webhook(single, T0 + timedelta(minutes=6), kind=EventKind.CODE_FAILED,
                                            device="front", code_ref=cloud.slot_of[first.pk], reason=Reason.NACK))

    tick(now=T0 + timedelta(minutes=6))

    create = LockCommand.objects.get(access_code=second, attempt=1)
    second.refresh_from_db()
    assert create.state == CommandState.SENT  # still pending on the lock: the news was A's
    assert second.status == CodeStatus.SETTING
    assert not LockIssue.objects.filter(access_code=second, kind=IssueKind.DUPLICATE_PIN).exists()


def test_a_late_failure_of_an_earlier_attempt_does_not_fail_the_retry_on_the_same_slot(single, cloud):
    """Seen under harsh faults (`simulate --faults harsh --seed 7`): a delete's first attempt was refused
    (nack, found by the sweeper) and the retry went out to the same slot; the lock's own report of the first
    refusal, delivered late, named that slot and failed the retry while it was still pending on the lock,
    and a third delete went out on top of it — the same change sent twice at once. News that happened before
    a command was sent is not news about it."""
    from locks.commands import command_complete
    from providers.base import Outcome

    code = AccessCode.objects.get(booking=_book(single, days=0, nights=1), lock=single.native)
    tick(now=T0)
    code.refresh_from_db()
    assert code.status == CodeStatus.SET
    cloud.mode = Progress.PENDING
    booking = code.booking
    from portal.services import booking_cancel

    booking_cancel(booking=booking, now=T0 + timedelta(minutes=10))
    tick(now=T0 + timedelta(minutes=10))
    first = LockCommand.objects.get(access_code=code, action=CommandAction.DELETE, state=CommandState.SENT)
    refused_at = T0 + timedelta(minutes=13)
    assert command_complete(command=first, outcome=Outcome(Progress.FAILED, reason=Reason.NACK, detail="nack"),
                            now=T0 + timedelta(minutes=16), source="sweep")
    LockCommand.objects.filter(access_code=code, state=CommandState.QUEUED).update(not_before=None)
    tick(now=T0 + timedelta(minutes=17))
    retry = LockCommand.objects.get(access_code=code, action=CommandAction.DELETE, state=CommandState.SENT)

    _webhook(single, T0 + timedelta(minutes=18), kind=EventKind.CODE_FAILED, device="front",
             code_ref=code.vendor_code_ref, reason=Reason.NACK, at=refused_at.isoformat())

    retry.refresh_from_db()
    assert retry.state == CommandState.SENT  # the news was about the first attempt
    # The retry's own refusal, reported after it was sent, is its outcome.
    _webhook(single, T0 + timedelta(minutes=20), kind=EventKind.CODE_FAILED, device="front",
             code_ref=code.vendor_code_ref, reason=Reason.NACK, at=(T0 + timedelta(minutes=19)).isoformat())
    retry.refresh_from_db()
    assert retry.state == CommandState.FAILED
