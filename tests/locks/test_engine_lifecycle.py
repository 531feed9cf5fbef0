"""A booking's codes from creation to removal, on a natively scheduling and on a just-in-time lock."""

from __future__ import annotations

from datetime import datetime, timedelta

from locks.models import AccessCode, Activity, CodeStatus, CommandState, LockCommand, Verification
from locks.outcomes import event_process
from locks.planning import codes_sync_for_booking
from locks.tick import tick
from portal.models import Booking
from portal.services import booking_cancel, booking_create, booking_update
from providers.base import EventKind, Progress
from providers.models import WebhookEvent
from tests.locks.conftest import T0


def _book(place, *, days: int = 5, nights: int = 3, **extra) -> Booking:
    check_in = T0 + timedelta(days=days)
    return booking_create(tenant=place.tenant, property=place.property, guest_name="Ana Costa de Almeida",
                          check_in=check_in, check_out=check_in + timedelta(days=nights), now=T0, **extra)


def _code(booking: Booking, lock) -> AccessCode:
    return AccessCode.objects.get(booking=booking, lock=lock)


def _webhook(place, now, *events) -> str:
    """Store a delivery as intake would and process it (what providers.tasks.process_event does)."""
    event = WebhookEvent.objects.create(
        provider_account=place.account, vendor_event_id=f"evt-{WebhookEvent.objects.count()}", received_at=now,
        payload={"id": "x", "events": [dict(e) for e in events]},
    )
    return event_process(event_id=event.pk, now=now)


def test_it_plans_one_code_per_lock_with_the_booking_window(place):
    booking = _book(place)
    native, jit = _code(booking, place.native), _code(booking, place.jit)
    starts_at = booking.check_in - timedelta(minutes=30)
    ends_at = booking.check_out + timedelta(minutes=30)
    assert (native.starts_at, native.ends_at) == (starts_at, ends_at)
    assert native.program_at == starts_at - timedelta(hours=72)
    assert jit.program_at == starts_at - timedelta(minutes=60)
    assert native.status == jit.status == CodeStatus.UNSET
    assert native.pin == jit.pin and len(native.pin) == 6
    assert native.common_code_key == jit.common_code_key == f"booking-{booking.pk}"
    assert native.name == "Ana Costa de"  # fitted to the lock's 12 characters
    assert not LockCommand.objects.exists()


def test_it_preloads_native_codes_72_hours_ahead_and_starts_them_at_the_window(single, cloud):
    booking = _book(single)
    code = _code(booking, single.native)

    tick(now=code.program_at - timedelta(minutes=1))
    assert cloud.sent() == []

    tick(now=code.program_at)
    code.refresh_from_db()
    assert [c.action for c in cloud.sent()] == ["create"]
    assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device
    assert code.verification == Verification.VENDOR_ACK

    tick(now=code.starts_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.SET and not code.is_scheduled_on_device

    tick(now=code.ends_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED
    assert [c.action for c in cloud.sent()] == ["create", "delete"]  # exactly two vendor calls
    assert cloud.codes["front"] == {}


def test_it_programs_just_in_time_codes_60_minutes_ahead_and_follows_webhooks(place, cloud):
    cloud.mode = Progress.PENDING
    booking = _book(place)
    code = _code(booking, place.jit)

    tick(now=code.program_at)
    code.refresh_from_db()
    command = LockCommand.objects.get(access_code=code)
    assert code.status == CodeStatus.SETTING
    assert command.state == CommandState.SENT and command.vendor_ref

    _webhook(place, code.program_at + timedelta(seconds=20),
             {"kind": EventKind.CODE_SET, "device": "back", "ref": command.vendor_ref})
    code.refresh_from_db()
    assert code.status == CodeStatus.SET and code.verification == Verification.VENDOR_ACK

    # The same event again, and a late one, change nothing.
    _webhook(place, code.program_at + timedelta(seconds=30),
             {"kind": EventKind.CODE_SET, "device": "back", "ref": command.vendor_ref})
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SUCCEEDED

    tick(now=code.ends_at)
    code.refresh_from_db()
    delete = LockCommand.objects.get(access_code=code, action="delete")
    assert code.status == CodeStatus.REMOVING and delete.state == CommandState.SENT

    _webhook(place, code.ends_at + timedelta(minutes=1),
             {"kind": EventKind.CODE_REMOVED, "device": "back", "code_ref": code.vendor_code_ref})
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED

    # A "set" arriving after removal is harmless.
    _webhook(place, code.ends_at + timedelta(minutes=2),
             {"kind": EventKind.CODE_SET, "device": "back", "ref": command.vendor_ref, "code_ref": code.vendor_code_ref})
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED
    assert [c.action for c in cloud.sent() if c.device == "back"] == ["create", "delete"]


def test_it_programs_at_once_when_the_booking_is_newer_than_the_lead(single, cloud):
    booking = _book(single, days=1)
    code = _code(booking, single.native)
    assert code.program_at == T0
    assert code.status == CodeStatus.SETTING
    assert LockCommand.objects.get(access_code=code).state == CommandState.QUEUED


def test_it_updates_codes_on_the_lock_when_dates_change(single, cloud):
    booking = _book(single, days=1)
    tick(now=T0)
    code = _code(booking, single.native)
    tick(now=code.starts_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.SET

    later = code.starts_at + timedelta(hours=1)
    booking_update(booking=booking, check_out=booking.check_out + timedelta(days=2), now=later)
    code.refresh_from_db()
    assert code.status == CodeStatus.SETTING
    assert code.ends_at == booking.check_out + timedelta(days=2, minutes=30)

    tick(now=later)
    code.refresh_from_db()
    assert code.status == CodeStatus.SET
    assert [c.action for c in cloud.sent()] == ["create", "update"]


def test_it_only_moves_program_at_for_codes_not_yet_programmed(place, cloud):
    booking = _book(place, days=10)
    booking_update(booking=booking, check_in=booking.check_in + timedelta(days=1),
                   check_out=booking.check_out + timedelta(days=1), now=T0)
    code = _code(booking, place.jit)
    assert code.status == CodeStatus.UNSET
    assert code.program_at == booking.check_in + timedelta(days=1) - timedelta(minutes=90)
    assert not LockCommand.objects.exists() and cloud.sent() == []


def test_it_deletes_programmed_codes_when_cancelled(single, cloud):
    booking = _book(single, days=1)
    tick(now=T0)
    code = _code(booking, single.native)
    booking_cancel(booking=booking, now=T0 + timedelta(minutes=5))
    tick(now=T0 + timedelta(minutes=5))
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED
    assert [c.action for c in cloud.sent()] == ["create", "delete"]


def test_it_removes_unprogrammed_codes_without_a_vendor_call_when_cancelled(place, cloud):
    booking = _book(place, days=10)
    booking_cancel(booking=booking, now=T0)
    booking_cancel(booking=booking, now=T0)  # twice is harmless
    assert set(AccessCode.objects.values_list("status", flat=True)) == {CodeStatus.REMOVED}
    tick(now=T0 + timedelta(days=20))
    assert cloud.sent() == []


def test_it_is_idempotent(place, cloud):
    booking = _book(place, days=1)
    before = (list(AccessCode.objects.values_list("id", "status", "program_at", "pin_fingerprint")),
              LockCommand.objects.count(), Activity.objects.count())
    codes_sync_for_booking(booking=booking, now=T0 + timedelta(minutes=3))
    codes_sync_for_booking(booking=booking, now=T0 + timedelta(minutes=4))
    after = (list(AccessCode.objects.values_list("id", "status", "program_at", "pin_fingerprint")),
             LockCommand.objects.count(), Activity.objects.count())
    assert before == after


def test_it_uses_the_guests_phone_when_the_property_asks(place):
    place.property.pin_policy = "phone_last4"
    place.property.save()
    booking = _book(place, guest_phone="+1 609 555 4821")
    assert {c.pin for c in AccessCode.objects.filter(booking=booking)} == {"4821"}


def test_it_gives_pins_unique_among_live_codes_on_the_lock(place):
    first = _book(place)
    place.property.pin_policy = "phone_last4"
    place.property.save()
    second = _book(place, days=8, guest_phone="+1 609 555 4821")
    third = _book(place, days=11, guest_phone="+1 609 555 4821")  # the same phone: random fallback
    pins = [_code(b, place.native).pin for b in (first, second, third)]
    assert len(set(pins)) == 3 and pins[1] == "4821"


def test_it_gives_no_codes_to_a_booking_that_already_ended(place):
    booking_create(tenant=place.tenant, property=place.property, guest_name="Late", now=T0,
                   check_in=T0 - timedelta(days=3), check_out=T0 - timedelta(days=1))
    assert not AccessCode.objects.exists()



def test_it_fails_a_preloaded_code_the_lock_reports_failed(single, cloud):
    booking = _book(single)
    code = _code(booking, single.native)
    tick(now=code.program_at)
    code.refresh_from_db()
    assert code.is_scheduled_on_device
    _webhook(single, code.starts_at, {"kind": EventKind.CODE_FAILED, "device": "front",
                                      "code_ref": code.vendor_code_ref, "reason": "slots_full"})
    code.refresh_from_db()
    assert code.status == CodeStatus.FAILED and code.last_reason == "slots_full"
    assert code.issues.get().kind == "slots_full"


def test_it_does_not_take_another_slots_success_for_the_command_in_flight(place, cloud):
    cloud.mode = Progress.PENDING
    booking = _book(place)
    code = _code(booking, place.jit)
    tick(now=code.program_at)
    command = LockCommand.objects.get(access_code=code)
    _webhook(place, code.program_at, {"kind": EventKind.CODE_SET, "device": "back", "code_ref": "slot-999"})
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SENT
    _webhook(place, code.program_at, {"kind": EventKind.CODE_SET, "device": "back", "code_ref": code.vendor_code_ref})
    assert LockCommand.objects.get(pk=command.pk).state == CommandState.SUCCEEDED


def test_it_computes_windows_in_real_time_across_a_dst_change(single):
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    check_in = datetime(2026, 3, 9, 15, 0, tzinfo=new_york)  # the day after clocks went forward
    booking = booking_create(tenant=single.tenant, property=single.property, guest_name="Ida", now=T0.replace(month=3),
                             check_in=check_in, check_out=datetime(2026, 3, 11, 11, 0, tzinfo=new_york))
    code = _code(booking, single.native)
    assert code.starts_at.astimezone(new_york).strftime("%H:%M") == "14:30"
    assert code.ends_at.astimezone(new_york).strftime("%H:%M") == "11:30"
    assert code.starts_at - code.program_at == timedelta(hours=72)  # the lock's lead is real hours


def test_it_starts_a_preloaded_code_when_the_lock_reports_it_set(single, cloud):
    booking = _book(single)
    code = _code(booking, single.native)
    tick(now=code.program_at)
    code.refresh_from_db()
    early = code.starts_at - timedelta(hours=1)
    _webhook(single, early, {"kind": EventKind.CODE_SET, "device": "front", "code_ref": code.vendor_code_ref})
    code.refresh_from_db()
    assert code.status == CodeStatus.UNSET  # not before its window
    _webhook(single, code.starts_at, {"kind": EventKind.CODE_SET, "device": "front", "code_ref": code.vendor_code_ref})
    code.refresh_from_db()
    assert code.status == CodeStatus.SET and not code.is_scheduled_on_device


def test_a_preloaded_code_the_lock_calls_active_hours_before_its_window_gets_the_lock_read(place, cloud):
    """The lock opening for a code hours before the window we sent means it holds another window (the stay
    moved and the vendor's "done" was not true): ask the lock now rather than at the next routine read."""
    booking = _book(place, days=2)
    code = _code(booking, place.native)
    tick(now=T0)
    code.refresh_from_db()
    assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device
    early = code.starts_at - timedelta(hours=3)

    outcome = _webhook(place, early, {"kind": EventKind.CODE_SET, "device": "front", "code_ref": code.vendor_code_ref,
                                      "at": early.isoformat()})

    place.native.refresh_from_db()
    code.refresh_from_db()
    assert place.native.reconcile_requested and "read" in outcome
    assert code.status == CodeStatus.UNSET  # not active: our window has not started


def test_a_preloaded_code_set_a_little_before_its_window_is_the_vendor_rounding_not_news(place, cloud):
    booking = _book(place, days=2)
    code = _code(booking, place.native)
    tick(now=T0)
    code.refresh_from_db()
    place.native.refresh_from_db()
    requested = place.native.reconcile_requested
    at = code.starts_at - timedelta(minutes=20)

    _webhook(place, at, {"kind": EventKind.CODE_SET, "device": "front", "code_ref": code.vendor_code_ref,
                         "at": at.isoformat()})

    place.native.refresh_from_db()
    assert place.native.reconcile_requested == requested
