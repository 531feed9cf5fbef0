"""Guest messages driven by the real engine (tick, dispatch, a scripted vendor): the code message waits
for the just-in-time door's programming and goes out once both doors hold the PIN."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail

from locks.dispatch import dispatch_lock
from locks.models import AccessCode, CodeStatus, IssueKind, LockIssue
from locks.tick import tick
from portal.messages import messages_send_due
from portal.models import Message, MessageStatus, Property
from portal.services import booking_create
from providers.base import Progress
from tests.locks.conftest import T0


def _run_engine(place, now):
    tick(now=now)
    for lock in (place.native, place.jit):
        dispatch_lock(lock_id=lock.pk, now=now)


def test_the_code_message_waits_for_the_just_in_time_door_and_then_carries_both_pins(place, cloud):
    Property.objects.filter(pk=place.property.pk).update(message_offset_hours=24, message_second_offset_hours=1)
    check_in = T0 + timedelta(days=3)
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa",
                             guest_email="ana@example.com", check_in=check_in,
                             check_out=check_in + timedelta(days=2), now=T0)
    _run_engine(place, T0)
    front = AccessCode.objects.get(booking=booking, lock=place.native)
    back = AccessCode.objects.get(booking=booking, lock=place.jit)
    assert front.status == CodeStatus.UNSET and front.is_scheduled_on_device  # preloaded, confirmed
    assert back.status == CodeStatus.UNSET  # its programming comes an hour or so before the window

    messages_send_due(now=check_in - timedelta(hours=24))
    assert mail.outbox == [] and Message.objects.get().status == MessageStatus.HELD
    assert not LockIssue.objects.filter(kind=IssueKind.GUEST_NOT_TOLD).exists()  # on schedule, not late

    back.refresh_from_db()
    _run_engine(place, back.program_at)
    back.refresh_from_db()
    assert back.status == CodeStatus.SET
    messages_send_due(now=back.program_at + timedelta(minutes=1))

    [sent] = mail.outbox
    assert f"Front: {front.pin}" in sent.body and f"Back: {back.pin}" in sent.body
    assert Message.objects.get().status == MessageStatus.SENT


def test_a_door_that_never_confirms_gets_no_pin_sent_and_staff_see_it(place, cloud):
    Property.objects.filter(pk=place.property.pk).update(message_offset_hours=24, message_second_offset_hours=1)
    check_in = T0 + timedelta(days=3)
    booking = booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa",
                             guest_email="ana@example.com", check_in=check_in,
                             check_out=check_in + timedelta(days=2), now=T0)
    _run_engine(place, T0)
    back = AccessCode.objects.get(booking=booking, lock=place.jit)
    cloud.mode = Progress.PENDING  # the vendor accepts; the lock never confirms
    _run_engine(place, back.program_at)
    back.refresh_from_db()
    assert back.status == CodeStatus.SETTING

    for minutes in (1, 20, 30):
        messages_send_due(now=back.program_at + timedelta(minutes=minutes))

    assert [m for m in mail.outbox if m.to == ["ana@example.com"]] == []
    issue = LockIssue.objects.get(kind=IssueKind.GUEST_NOT_TOLD)
    assert issue.lock == place.jit and issue.data.get("escalated")  # the second offset came: staff alerted
    assert Message.objects.get(kind="code_delivery").why_held == "Back not confirmed"
    assert all(back.pin not in m.body for m in mail.outbox)
