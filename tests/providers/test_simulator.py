"""The simulator provider: profiles, faults, repeatability, webhook signing, the advance task."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_q.models import Schedule

from locks.models import CommandAction, LockCommand
from providers.base import EventKind, Progress, ProviderError, Reason, WebhookVerificationError
from providers.models import SimulatedDevice, WebhookEvent
from providers.registry import get_provider
from providers.simulator import (
    PROFILES,
    SIGNATURE_HEADER,
    SimulatorProvider,
    sign,
    simulator_advance,
    simulator_device_create,
)
from providers.simulator_tasks import advance_all
from tests import factories

T0 = datetime(2030, 6, 3, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def make_lock(profile: str, *, faults: dict | None = None, seed: int = 1, device_id: str = "", tenant=None,
              external_codes: dict | None = None):
    tenant = tenant or factories.TenantFactory()
    account = factories.ProviderAccountFactory(tenant=tenant, credentials={"seed": seed}, webhook_secret="s3cret")
    lock = factories.LockFactory(
        tenant=tenant, provider_account=account, vendor_device_id=device_id or f"sim-{profile}",
        requirements={**PROFILES[profile].requirements, "simulator_profile": profile},
        native_scheduling=PROFILES[profile].native_scheduling, pin_readable=PROFILES[profile].pin_readable,
    )
    simulator_device_create(account=account, device_id=lock.vendor_device_id, profile=profile, faults=faults,
                            external_codes=external_codes)
    return lock


def code_on(lock, pin: str, *, starts_in=timedelta(hours=1), length=timedelta(days=2)):
    return factories.AccessCodeFactory(tenant=lock.tenant, lock=lock, pin=pin, starts_at=T0 + starts_in,
                                       ends_at=T0 + starts_in + length)


def device_of(lock) -> SimulatedDevice:
    return SimulatedDevice.objects.get(account=lock.provider_account, device_id=lock.vendor_device_id)


def events_of(lock) -> list[dict]:
    return [event.payload for event in
            WebhookEvent.objects.filter(provider_account=lock.provider_account).order_by("pk")]


def command_for(code, receipt, action=CommandAction.CREATE) -> LockCommand:
    return factories.LockCommandFactory(tenant=code.tenant, lock=code.lock, access_code=code, action=action,
                                        vendor_ref=receipt.vendor_ref)


# --------------------------------------------------------------------------- contract and signing


def test_it_is_the_registered_simulator_adapter(db):
    lock = make_lock("seam")
    assert isinstance(get_provider(lock.provider_account), SimulatorProvider)


def test_it_accepts_a_correct_signature_and_rejects_a_bad_or_missing_one(db):
    lock = make_lock("seam")
    provider = get_provider(lock.provider_account)
    body = json.dumps({"event_id": "e1", "profile": "seam", "device_id": "sim-seam",
                       "type": "access_code.set_on_device", "code_ref": "ac_1"}).encode()

    provider.verify_webhook(body, {SIGNATURE_HEADER.lower(): f"sha256={sign(body, 's3cret')}"})
    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(body, {SIGNATURE_HEADER: f"sha256={sign(body, 'not-the-secret')}"})
    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(body + b" ", {SIGNATURE_HEADER: f"sha256={sign(body, 's3cret')}"})
    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(body, {})


def test_it_parses_its_events_into_vendor_events(db):
    lock = make_lock("smartthings")
    body = json.dumps({"event_id": "e7", "profile": "smartthings", "device_id": "sim-smartthings",
                       "type": "codeChanged.failed", "code_ref": "1", "clash_ref": "1",
                       "reason": "duplicate_pin", "detail": "1 failed"}).encode()

    [event] = get_provider(lock.provider_account).parse_webhook(body, {})

    assert (event.kind, event.vendor_event_id, event.clash_code_ref, event.reason, event.detail) == (
        EventKind.CODE_FAILED, "e7", "1", "duplicate_pin", "1 failed")


def test_it_lists_its_devices_with_the_profile_capabilities(db):
    lock = make_lock("nuki")
    [device] = get_provider(lock.provider_account).list_devices()
    assert (device.vendor_device_id, device.native_scheduling, device.pin_readable) == ("sim-nuki", False, True)
    assert device.requirements["constraints"] == ["no_zeros", "cannot_start_with_12"]


# --------------------------------------------------------------------------- time and delivery


def test_it_finishes_an_operation_only_when_advanced_past_its_latency(db, clock):
    lock = make_lock("smartthings", faults={"latency": 120})
    code = code_on(lock, "482913")
    receipt = get_provider(lock.provider_account).create_code(lock, code)

    assert receipt.progress == Progress.PENDING and receipt.vendor_code_ref == "1"
    simulator_advance(account=lock.provider_account, now=T0 + timedelta(seconds=30))
    assert device_of(lock).codes == {} and events_of(lock) == []

    delivered = simulator_advance(account=lock.provider_account, now=T0 + timedelta(minutes=4))

    assert delivered == 1
    assert device_of(lock).codes["1"]["pin"] == "482913"
    [event] = events_of(lock)
    assert (event["type"], event["code_ref"], event["pin"]) == ("codeChanged.set", "1", None)  # not readable


def test_a_booked_code_reaches_set_through_the_engine_and_the_webhook(db, clock, django_capture_on_commit_callbacks):
    from locks.dispatch import dispatch_lock
    from portal.services import booking_create

    lock = make_lock("nuki")
    booking = booking_create(tenant=lock.tenant, property=lock.property, guest_name="Ana Costa",
                             check_in=T0 + timedelta(minutes=40), check_out=T0 + timedelta(days=2), now=T0)
    code = booking.access_codes.get()
    dispatch_lock(lock_id=lock.pk, now=T0)

    with django_capture_on_commit_callbacks(execute=True):  # the webhook's processing is queued on commit
        simulator_advance(account=lock.provider_account, now=T0 + timedelta(minutes=1))

    code.refresh_from_db()
    assert code.status == "set"
    assert device_of(lock).codes[code.vendor_code_ref]["pin"] == code.pin


def test_the_worker_task_advances_every_account_with_due_work(db, clock):
    lock = make_lock("schlage")
    get_provider(lock.provider_account).create_code(lock, code_on(lock, "583920"))
    clock.move_to(LATER)

    assert advance_all() == 1
    assert [held["pin"] for held in device_of(lock).codes.values()] == ["583920"]


def test_migrate_schedules_the_advance_task_every_minute(db):
    schedule = Schedule.objects.get(func="providers.simulator_tasks.advance_all")
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 1)


# --------------------------------------------------------------------------- profiles


def test_seam_preloads_a_code_and_activates_it_at_starts_at(db, clock):
    lock = make_lock("seam")
    code = code_on(lock, "739164", starts_in=timedelta(days=2))
    provider = get_provider(lock.provider_account)
    provider.create_code(lock, code)

    simulator_advance(account=lock.provider_account, now=LATER)
    held = next(iter(device_of(lock).codes.values()))
    assert held["status"] == "scheduled"
    simulator_advance(account=lock.provider_account, now=T0 + timedelta(days=2))

    assert [event["type"] for event in events_of(lock)] == [
        "access_code.scheduled_on_device", "access_code.set_on_device"]
    [observed] = provider.read_codes(lock)
    assert (observed.pin, observed.managed) == ("739164", True)


def test_smartthings_reports_a_duplicate_pin_as_the_other_slot_failing(db, clock):
    lock = make_lock("smartthings", external_codes={"Cleaner": "104729"})  # in slot 1, set at the keypad
    provider = get_provider(lock.provider_account)
    second = code_on(lock, "104729")
    receipt = provider.create_code(lock, second)

    simulator_advance(account=lock.provider_account, now=LATER)

    assert receipt.vendor_code_ref == "2"
    last = events_of(lock)[-1]
    assert (last["type"], last["code_ref"], last["clash_ref"], last["detail"]) == (
        "codeChanged.failed", "1", "1", "1 failed")
    outcome = provider.command_status(lock, command_for(second, receipt))
    assert (outcome.progress, outcome.reason, outcome.clash_code_ref) == (Progress.FAILED, Reason.DUPLICATE_PIN, "1")


def test_smartthings_is_busy_while_another_operation_runs(db, clock):
    lock = make_lock("smartthings", faults={"latency": 600})
    provider = get_provider(lock.provider_account)
    provider.create_code(lock, code_on(lock, "271828"))

    with pytest.raises(ProviderError) as refused:
        provider.create_code(lock, code_on(lock, "314159"))
    assert refused.value.reason == Reason.BUSY


def test_nuki_refuses_pins_outside_its_rules_and_duplicates(db, clock):
    lock = make_lock("nuki", external_codes={"Owner": "937481"})
    provider = get_provider(lock.provider_account)
    for bad in ("123456", "405678", "98765"):
        with pytest.raises(ProviderError) as refused:
            provider.create_code(lock, code_on(lock, bad))
        assert refused.value.reason == Reason.INVALID_PIN and refused.value.status_code == 400

    with pytest.raises(ProviderError) as refused:
        provider.create_code(lock, code_on(lock, "937481"))
    assert (refused.value.reason, refused.value.status_code) == (Reason.DUPLICATE_PIN, 409)


def test_nuki_answers_423_while_an_operation_on_the_same_auth_runs(db, clock):
    lock = make_lock("nuki", faults={"latency": 600})
    provider = get_provider(lock.provider_account)
    code = code_on(lock, "937481")
    receipt = provider.create_code(lock, code)
    code.vendor_code_ref = receipt.vendor_code_ref

    with pytest.raises(ProviderError) as refused:
        provider.delete_code(lock, code)
    assert (refused.value.reason, refused.value.status_code) == (Reason.BUSY, 423)


def test_schlage_fixes_the_code_length_with_the_first_code(db, clock):
    lock = make_lock("schlage")
    provider = get_provider(lock.provider_account)
    provider.create_code(lock, code_on(lock, "583920"))
    simulator_advance(account=lock.provider_account, now=LATER)
    longer = code_on(lock, "58392071")
    receipt = provider.create_code(lock, longer)

    simulator_advance(account=lock.provider_account, now=LATER + timedelta(minutes=1))

    assert receipt.vendor_ref.startswith("cmd_")
    outcome = provider.command_status(lock, command_for(longer, receipt))
    assert (outcome.progress, outcome.reason) == (Progress.FAILED, Reason.INVALID_PIN)
    assert events_of(lock)[-1]["type"] == "CommandStatusUpdated.Failed"


def test_schlage_cannot_delete_a_code_the_lock_does_not_hold(db, clock):
    lock = make_lock("schlage")
    provider = get_provider(lock.provider_account)
    code = code_on(lock, "583920")
    code.vendor_code_ref = "acc_sim-schlage-99"
    receipt = provider.delete_code(lock, code)

    simulator_advance(account=lock.provider_account, now=LATER)

    outcome = provider.command_status(lock, command_for(code, receipt, CommandAction.DELETE))
    assert (outcome.progress, outcome.reason, outcome.detail) == (
        Progress.FAILED, Reason.NOT_FOUND_ON_DEVICE, "Access code ID not found on device")


# --------------------------------------------------------------------------- faults


def test_a_timed_out_operation_never_completes(db, clock):
    lock = make_lock("schlage", faults={"timeout": 1})
    provider = get_provider(lock.provider_account)
    code = code_on(lock, "583920")
    receipt = provider.create_code(lock, code)

    simulator_advance(account=lock.provider_account, now=T0 + timedelta(hours=3))

    assert provider.command_status(lock, command_for(code, receipt)).progress == Progress.PENDING
    assert device_of(lock).codes == {} and events_of(lock) == []


def test_a_nack_fails_the_operation(db, clock):
    lock = make_lock("seam", faults={"nack": 1})
    provider = get_provider(lock.provider_account)
    code = code_on(lock, "739164")
    receipt = provider.create_code(lock, code)

    simulator_advance(account=lock.provider_account, now=LATER)

    assert provider.command_status(lock, command_for(code, receipt)).reason == Reason.NACK
    assert events_of(lock)[0]["type"] == "access_code.failed_to_set_on_device"


def test_a_lost_webhook_leaves_the_truth_to_the_status_poll(db, clock):
    lock = make_lock("nuki", faults={"lost_webhook": 1})
    provider = get_provider(lock.provider_account)
    code = code_on(lock, "937481")
    receipt = provider.create_code(lock, code)

    simulator_advance(account=lock.provider_account, now=LATER)

    assert events_of(lock) == []
    assert provider.command_status(lock, command_for(code, receipt)).progress == Progress.DONE


def test_a_duplicated_webhook_is_delivered_twice_and_stored_once(db, clock):
    lock = make_lock("nuki", faults={"duplicate_webhook": 1})
    get_provider(lock.provider_account).create_code(lock, code_on(lock, "937481"))

    first = simulator_advance(account=lock.provider_account, now=T0)
    second = simulator_advance(account=lock.provider_account, now=T0 + timedelta(minutes=1))

    assert (first, second) == (1, 1)
    assert len(events_of(lock)) == 1


def test_a_reordered_webhook_arrives_after_a_later_one(db, clock):
    lock = make_lock("seam", faults={"reorder_webhook": 1})
    provider = get_provider(lock.provider_account)
    provider.create_code(lock, code_on(lock, "739164", starts_in=timedelta(0)))
    simulator_advance(account=lock.provider_account, now=T0)
    device = device_of(lock)
    device.faults = {}
    device.save(update_fields=["faults"])
    clock.move_to(T0 + timedelta(seconds=10))
    provider.create_code(lock, code_on(lock, "864205", starts_in=timedelta(0)))

    simulator_advance(account=lock.provider_account, now=T0 + timedelta(minutes=10))

    first_ref = sorted(device_of(lock).codes)[0]
    assert [event["code_ref"] == first_ref for event in events_of(lock)] == [False, True]


def test_desync_reports_success_while_the_lock_lost_the_code(db, clock):
    lock = make_lock("schlage", faults={"desync": 1})
    provider = get_provider(lock.provider_account)
    code = code_on(lock, "583920")
    receipt = provider.create_code(lock, code)

    simulator_advance(account=lock.provider_account, now=LATER)

    assert provider.command_status(lock, command_for(code, receipt)).progress == Progress.DONE
    assert provider.read_codes(lock) == []


def test_busy_refuses_the_call(db, clock):
    lock = make_lock("seam", faults={"busy": 1})
    with pytest.raises(ProviderError) as refused:
        get_provider(lock.provider_account).create_code(lock, code_on(lock, "739164"))
    assert refused.value.reason == Reason.BUSY


def test_a_refused_call_is_counted_and_does_not_repeat_its_luck(db, clock):
    lock = make_lock("seam", faults={"busy": 0.5})
    provider = get_provider(lock.provider_account)
    outcomes = []
    for n in range(12):
        try:
            provider.create_code(lock, code_on(lock, f"{739164 + n * 11}"))
            outcomes.append("accepted")
        except ProviderError:
            outcomes.append("busy")

    assert set(outcomes) == {"accepted", "busy"}
    device = device_of(lock)
    assert (device.stats["calls"]["create"], device.counter) == (12, 12)


def test_an_external_pin_appears_on_the_lock_as_unmanaged(db, clock):
    lock = make_lock("seam", faults={"external_pin": 1})
    provider = get_provider(lock.provider_account)
    provider.create_code(lock, code_on(lock, "739164"))

    observed = provider.read_codes(lock)

    assert [item.managed for item in observed] == [False]
    assert observed[0].name == "Set at the keypad"


# --------------------------------------------------------------------------- repeatability


def _story(seed: int, tenant) -> list[tuple]:
    faults = {"latency": 60, "timeout": 0.3, "nack": 0.3, "lost_webhook": 0.3, "desync": 0.2, "busy": 0.2}
    lock = make_lock("seam", faults=faults, seed=seed, device_id="same-device", tenant=tenant)
    provider = get_provider(lock.provider_account)
    story = []
    for n in range(12):
        try:
            receipt = provider.create_code(lock, code_on(lock, f"{739164 + n * 7}"))
            story.append(("accepted", receipt.vendor_ref))
        except ProviderError as exc:
            story.append(("refused", exc.reason))
    simulator_advance(account=lock.provider_account, now=T0 + timedelta(minutes=5))
    device = device_of(lock)
    return story + [(op["state"], op.get("reason", "")) for op in device.operations] + [len(events_of(lock))]


def test_the_same_seed_tells_the_same_story(db, clock):
    tenant_a, tenant_b, tenant_c = (factories.TenantFactory() for _ in range(3))
    assert _story(5, tenant_a) == _story(5, tenant_b)
    assert _story(5, tenant_a) != _story(6, tenant_c)


# --------------------------------------------------------------------------- arrivals


@pytest.mark.parametrize("profile", ["seam", "smartthings", "nuki", "schlage"])
def test_a_guest_arrives_and_the_lock_reports_their_code_in_its_vendors_shape(
    db, clock, profile, django_capture_on_commit_callbacks, monkeypatch
):
    from locks.tick import tick
    from portal.services import booking_create

    monkeypatch.setattr("providers.simulator.ARRIVAL_CHANCE", 1.0)  # this guest comes (a tenth do not)

    lock = make_lock(profile, device_id=f"sim-arrive-{profile}")
    prop = lock.property
    prop.timezone = "UTC"
    prop.save(update_fields=["timezone"])
    booking = booking_create(tenant=lock.tenant, property=prop, guest_name="Ana Costa", check_in=T0 + timedelta(hours=2),
                             check_out=T0 + timedelta(days=2), now=T0)
    code = booking.access_codes.get(lock=lock)
    moment = T0
    for _ in range(60):  # the engine and the simulated cloud, an hour at a time, through the stay's first day
        moment += timedelta(hours=1)
        clock.move_to(moment)
        with django_capture_on_commit_callbacks(execute=True):  # deliveries are processed after commit
            tick(now=moment)
            simulator_advance(account=lock.provider_account, now=moment)
        booking.refresh_from_db()
        if booking.first_entry_at:
            break

    code.refresh_from_db()
    arrivals = [event for event in events_of(lock) if event["type"] == PROFILES[profile].events["unlocked"]]
    assert len(arrivals) == 1 and arrivals[0]["pin"] is None
    assert booking.first_entry_at is not None and code.first_used_at == booking.first_entry_at
    assert code.starts_at < booking.first_entry_at <= code.starts_at + timedelta(hours=5)
