"""The simulated fleet of `manage.py simulate`, shared by both modes: building it (tenant, simulator
account, locks, the booking plan), the in-process run on a virtual clock, the step arithmetic, the report
and its checks, and deleting it. See the command's docstring for the report keys."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q

from locks.management.simulation.guests import GuestLedger, guest_contact, guests_report, guests_tell
from locks.models import (
    AccessCode,
    Activity,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    Lock,
    LockCommand,
    LockIssue,
)
from portal.models import Booking, BookingStatus, Property, Tenant
from providers.models import ProviderAccount, SimulatedDevice, Vendor, WebhookEvent
from providers.simulator import (
    FAULT_PRESETS,
    PROFILES,
    simulator_advance,
    simulator_device_create,
    simulator_next_due,
)

START = datetime(2030, 6, 3, tzinfo=UTC)  # fixed, so the same seed gives the same story
PROFILE_CYCLE = ("seam", "smartthings", "nuki", "schlage")
TIMEZONES = ("America/New_York", "Europe/Lisbon", "Asia/Tokyo")
LOCK_WIDE_EXPLANATIONS = (IssueKind.UNMANAGED_CODE, IssueKind.DESYNC)
LIVE = (CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET, CodeStatus.REMOVING)
STEP = timedelta(minutes=1)
# Simulated devices keep their online state and battery, so the health check (every 10 min in production)
# has nothing new to find more often than this; it still runs, to keep its cost honest.
HEALTH_EVERY = timedelta(hours=6)


@dataclass
class Fleet:
    tenant: Tenant
    account: ProviderAccount
    properties: list[Property]
    plan: list[tuple[datetime, str, dict[str, Any]]]  # (when, what, details), sorted by when
    end: datetime
    # Channel bookings (and extensions) refused because staff had moved another stay into their dates
    # (`--faults harsh`): the portal says why, as it would to the channel, and nothing is stored.
    refused_overlaps: int = 0


@dataclass
class Observations:
    at_start: dict[int, tuple[str, datetime]] = field(default_factory=dict)  # code id → (status, starts_at)
    guests: GuestLedger | None = None  # the guest messages sent (in-process runs: guests.py)



# --------------------------------------------------------------------------- building


def fleet_build(*, bookings: int, locks: int, days: int, faults: str, seed: int) -> Fleet:
    rng = random.Random(f"fleet-{seed}")
    tenant = Tenant.objects.create(name=f"Simulation {seed}", slug=f"sim-{seed}-{secrets.token_hex(4)}",
                                   timezone="UTC")
    account = ProviderAccount.objects.create(
        tenant=tenant, vendor=Vendor.SIMULATOR, name="Simulated fleet",
        credentials={"seed": seed, "faults": FAULT_PRESETS[faults]},
    )
    properties = [
        Property.objects.create(tenant=tenant, name=f"Property {n + 1}", timezone=TIMEZONES[n % len(TIMEZONES)])
        for n in range((locks + 1) // 2)
    ]
    for n in range(locks):
        profile = PROFILE_CYCLE[n % len(PROFILE_CYCLE)]
        lock = Lock.objects.create(
            tenant=tenant, property=properties[n // 2], provider_account=account,
            vendor_device_id=f"sim-{n + 1:03d}", name=f"Door {n + 1} ({profile})", model=f"Simulated {profile}",
            requirements={**PROFILES[profile].requirements, "simulator_profile": profile},
            native_scheduling=PROFILES[profile].native_scheduling, pin_readable=PROFILES[profile].pin_readable,
        )
        simulator_device_create(account=account, device_id=lock.vendor_device_id, profile=profile, name=lock.name,
                                requirements=lock.requirements)
    end = START + timedelta(days=days)
    return Fleet(tenant=tenant, account=account, properties=properties,
                 plan=_booking_plan(rng, properties, bookings, days), end=end)


def _booking_plan(
    rng: random.Random, properties: list[Property], count: int, days: int
) -> list[tuple[datetime, str, dict[str, Any]]]:
    """Stays that end a day before the run does (so removals and a reconciliation fit in); a quarter booked
    during the run, 5 % cancelled, 5 % extended. Confirmed stays of one property never overlap (DESIGN §3),
    so each property's stays take turns: its share of the run is cut into equal slots, one stay in each,
    filling 45–95 % of its slot (short stays when the fleet is busy, like day-use rooms)."""
    plan: list[tuple[datetime, str, dict[str, Any]]] = []
    per_property = -(-count // len(properties))  # ceiling
    slot = timedelta(days=max(1, days - 1)) / per_property
    for n in range(count):
        prop = properties[n % len(properties)]
        slot_start = START + slot * (n // len(properties))
        check_in = (slot_start + slot * rng.uniform(0.0, 0.05)).replace(second=0, microsecond=0)
        check_out = (slot_start + slot * rng.uniform(0.5, 0.95)).replace(second=0, microsecond=0)
        slot_end = slot_start + slot
        booked_at = START
        if rng.random() < 0.25:
            booked_at = max(START, check_in - timedelta(hours=rng.uniform(2, 96)))
        ref = f"sim-{n + 1}"
        plan.append((booked_at, "create", {"ref": ref, "property": prop, "check_in": check_in,
                                           "check_out": check_out, "guest": f"Guest {n + 1}",
                                           **guest_contact(n + 1)}))
        change = rng.random()
        if change < 0.05:
            plan.append((booked_at + (check_in - booked_at) * rng.uniform(0.2, 0.9), "cancel", {"ref": ref}))
        elif change < 0.10:
            # Extended into the rest of its slot: later, but never into the next guest's stay.
            later = (check_out + (slot_end - check_out) / 2).replace(second=0, microsecond=0)
            plan.append((check_in + (check_out - check_in) * rng.uniform(0.1, 0.8), "extend",
                         {"ref": ref, "check_out": later}))
    return sorted(plan, key=lambda item: (item[0], item[2]["ref"]))


# --------------------------------------------------------------------------- running


def fleet_run(fleet: Fleet, *, move_to: Callable[[datetime], Any]) -> Observations:
    from locks import tasks
    from locks.sweep import sweep
    from locks.tick import tick

    ledger = GuestLedger()
    observations = Observations(guests=ledger)
    plan = list(fleet.plan)
    now, previous = START, START - STEP
    health_at = START
    while now <= fleet.end:
        move_to(now)
        while plan and plan[0][0] <= now:
            _apply_booking_change(fleet, *plan.pop(0)[1:], now=now)
        simulator_advance(account=fleet.account, now=now)
        tick(now=now)
        sweep(now=now)
        _process_stragglers(fleet, now)
        tasks.reconcile_due()
        if now >= health_at:
            tasks.health()
            health_at = now + HEALTH_EVERY
        guests_tell(fleet, ledger, now=now)
        _observe_starts(fleet, observations, after=previous, until=now)
        previous, now = now, _next_step(fleet, now, plan)
    return observations


def _apply_booking_change(fleet: Fleet, what: str, details: dict[str, Any], *, now: datetime) -> None:
    from portal.services import BookingOverlap, booking_cancel, booking_create, booking_update

    try:
        if what == "create":
            booking_create(tenant=fleet.tenant, property=details["property"], guest_name=details["guest"],
                           check_in=details["check_in"], check_out=details["check_out"],
                           guest_email=details.get("email", ""), guest_phone=details.get("phone", ""),
                           external_ref=details["ref"], source="api", now=now)
            return
        booking = Booking.objects.filter(tenant=fleet.tenant, external_ref=details["ref"]).first()
        if booking is None or booking.status != BookingStatus.CONFIRMED or booking.check_out <= now:
            return
        if what == "cancel":
            booking_cancel(booking=booking, now=now)
        else:
            booking_update(booking=booking, check_out=details["check_out"], now=now)
    except BookingOverlap:
        fleet.refused_overlaps += 1


def _process_stragglers(fleet: Fleet, now: datetime) -> None:
    """Webhook events stored but not processed (tasks run inline, so normally none)."""
    from locks.outcomes import event_process

    for event_id in WebhookEvent.objects.filter(provider_account=fleet.account, processed_at__isnull=True
                                                ).values_list("pk", flat=True):
        event_process(event_id=event_id, now=now)


def _observe_starts(fleet: Fleet, observations: Observations, *, after: datetime, until: datetime) -> None:
    for pk, status, starts_at in AccessCode.objects.filter(
        tenant=fleet.tenant, starts_at__gt=after, starts_at__lte=until
    ).values_list("pk", "status", "starts_at"):
        observations.at_start.setdefault(pk, (status, starts_at))


def _next_step(fleet: Fleet, now: datetime, plan: list[tuple[datetime, str, dict[str, Any]]]) -> datetime:
    """The next whole minute at which anything is due; at least one minute on. Five aggregate queries."""
    from locks.conf import engine

    knobs = engine()
    RECONCILE_EVERY = knobs.reconcile_every
    stale = timedelta(minutes=knobs.SWEEP_STALE_MINUTES)
    hard = timedelta(minutes=knobs.SWEEP_HARD_LIMIT_MINUTES)
    live = Q(status__in=LIVE)
    codes = AccessCode.objects.filter(tenant=fleet.tenant).aggregate(
        program=Min("program_at", filter=Q(status=CodeStatus.UNSET, program_at__gt=now)),
        start=Min("starts_at", filter=live & Q(starts_at__gt=now)),
        end=Min("ends_at", filter=live & Q(ends_at__gt=now)),
    )
    sent = Q(state=CommandState.SENT)
    queued = Q(state=CommandState.QUEUED)
    commands = LockCommand.objects.filter(tenant=fleet.tenant).aggregate(
        retry=Min("not_before", filter=queued & Q(not_before__gt=now)),
        ready=Count("pk", filter=queued & (Q(not_before__isnull=True) | Q(not_before__lte=now))),
        poll=Min("sent_at", filter=sent & Q(sent_at__gt=now - stale)),
        next_poll=Min("next_poll_at", filter=sent & Q(next_poll_at__gt=now)),
        give_up=Min("sent_at", filter=sent & Q(sent_at__gt=now - hard)),
    )
    # A code re-timed to now by its lock's new lead (locks/lead.py) after this step's tick: program it next.
    due_now = AccessCode.objects.filter(tenant=fleet.tenant, status=CodeStatus.UNSET, is_scheduled_on_device=False,
                                        program_at__lte=now, ends_at__gt=now).exists()
    locks = Lock.objects.filter(tenant=fleet.tenant).aggregate(
        oldest=Min("last_reconciled_at"), requested=Count("pk", filter=Q(reconcile_requested=True))
    )
    candidates = [
        codes["program"], codes["start"], codes["end"], commands["retry"],
        commands["poll"] and commands["poll"] + stale + STEP, commands["next_poll"],
        commands["give_up"] and commands["give_up"] + hard + STEP,
        locks["oldest"] and locks["oldest"] + RECONCILE_EVERY + STEP,
        simulator_next_due(account=fleet.account),
        plan[0][0] if plan else None,
    ]
    if commands["ready"] or locks["requested"] or due_now:
        return now + STEP
    future = [moment for moment in candidates if moment is not None and moment > now]
    if not future:
        return fleet.end + STEP
    upcoming = min(future)
    rounded = upcoming.replace(second=0, microsecond=0)
    if rounded < upcoming:
        rounded += STEP
    if now < fleet.end < rounded:
        return fleet.end
    return max(now + STEP, rounded)


# --------------------------------------------------------------------------- measuring


def fleet_report(fleet: Fleet, observations: Observations) -> dict[str, Any]:
    codes = list(AccessCode.objects.filter(tenant=fleet.tenant).select_related("booking").order_by("pk"))
    devices = list(SimulatedDevice.objects.filter(account=fleet.account))
    held_by_code: dict[int, list[dict[str, Any]]] = {}
    calls: Counter[str] = Counter()
    simulator_double_sends = 0
    sends: dict[int, Counter[str]] = {}
    duplicate_pins = 0
    for device in devices:
        pins = Counter(held["pin"] for held in device.codes.values())
        duplicate_pins += sum(n - 1 for n in pins.values() if n > 1)
        for held in device.codes.values():
            if held["code_id"] is not None:
                held_by_code.setdefault(held["code_id"], []).append(held)
        calls.update(device.stats.get("calls", {}))
        simulator_double_sends += device.stats.get("double_sends", 0)
        for code_id, by_action in device.stats.get("sends", {}).items():
            sends.setdefault(int(code_id), Counter()).update(by_action)
    duplicate_pins += (
        AccessCode.objects.filter(tenant=fleet.tenant, status__in=LIVE).exclude(pin_fingerprint="")
        .values("lock_id", "pin_fingerprint").annotate(n=Count("pk")).filter(n__gt=1).count()
    )
    open_issues = LockIssue.objects.filter(tenant=fleet.tenant, status=IssueStatus.OPEN)
    open_on_code = set(open_issues.filter(access_code__isnull=False).values_list("access_code_id", flat=True))
    open_lock_wide = set(open_issues.filter(kind__in=LOCK_WIDE_EXPLANATIONS).values_list("lock_id", flat=True))
    issues = list(LockIssue.objects.filter(tenant=fleet.tenant).values(
        "access_code_id", "lock_id", "first_seen_at", "resolved_at"))
    with_issue = {issue["access_code_id"] for issue in issues if issue["access_code_id"]}

    def explained_at(code: AccessCode, moment: datetime) -> bool:
        return code.pk in with_issue or any(
            issue["access_code_id"] is None and issue["lock_id"] == code.lock_id and issue["first_seen_at"] <= moment
            and (issue["resolved_at"] is None or issue["resolved_at"] >= moment)
            for issue in issues
        )

    def excused(code: AccessCode) -> bool:
        return code.pk in open_on_code or code.lock_id in open_lock_wide

    started = set_in_window = late_with_issue = silently_wrong = left_after_end = 0
    per_code, unexplained = [], []
    for code in codes:
        seen = observations.at_start.get(code.pk)
        if seen is not None and seen[0] not in (CodeStatus.REMOVING, CodeStatus.REMOVED):
            started += 1
            if seen[0] == CodeStatus.SET:
                set_in_window += 1
            elif explained_at(code, seen[1]):
                late_with_issue += 1
            else:
                unexplained.append(code.pk)
        held = held_by_code.get(code.pk, [])
        on_lock_right = any(item["pin"] == code.pin for item in held)
        if _disagrees(code, held=bool(held), right=on_lock_right) and not excused(code):
            silently_wrong += 1
        if held and code.ends_at is not None and code.ends_at <= fleet.end - timedelta(hours=1) and not excused(code):
            left_after_end += 1
        ended = code.ends_at is not None and code.ends_at <= fleet.end and code.status == CodeStatus.REMOVED
        if ended and code.booking is not None and code.booking.status == BookingStatus.CONFIRMED:
            per_code.append({"code": code.pk, **sends.get(code.pk, {})})
    exposure = {int(code_id): seconds for device in devices
                for code_id, seconds in device.stats.get("early_exposure", {}).items()}
    lead_changes = Activity.objects.filter(tenant=fleet.tenant, verb="lock.lead_changed").count()
    engine_double_sends = (
        Activity.objects.filter(tenant=fleet.tenant, verb="command.sent", command__isnull=False)
        .values("command_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    )
    # Arrivals: stays whose guest the locks reported opening a door (the simulator's guests "arrive").
    first_use_recorded = Booking.objects.filter(tenant=fleet.tenant, first_entry_at__isnull=False).count()
    report = {
        "codes": len(codes),
        "by_status": dict(sorted(Counter(code.status for code in codes).items())),
        "first_use_recorded": first_use_recorded,
        "booking_overlaps_refused": fleet.refused_overlaps,
        "started": started,
        "set_in_window": set_in_window,
        "late_with_issue": late_with_issue,
        "unexplained": started - set_in_window - late_with_issue,
        "silently_wrong": silently_wrong,
        "duplicate_pins_on_lock": duplicate_pins,
        "double_sends": engine_double_sends + simulator_double_sends,
        "left_after_end": left_after_end,
        "vendor_calls": dict(sorted(calls.items())),
        **_budget(fleet, calls=calls, codes=len(codes), started=started, set_in_window=set_in_window,
                  exposure=exposure),
        "lead_changes": lead_changes,
        "_per_code": per_code,
        "_unexplained": unexplained,
    }
    if observations.guests is not None:
        report.update(guests_report(fleet, observations.guests))
    return report


WRITE_CALLS = ("create", "update", "delete")


def _budget(fleet: Fleet, *, calls: Counter[str], codes: int, started: int, set_in_window: int,
            exposure: dict[int, int]) -> dict[str, Any]:
    """Vendor calls as a budget, and how early codes were live (issue 15): `writes` (create, update, delete
    calls) and `writes_per_code`, `status_polls_per_write`, `reads_per_lock_per_day` (code reads),
    `set_in_window_pct` (of started), and `early_exposure`: over the codes that went on a lock without native
    scheduling, how long before starts_at each was live there (mean and max minutes), with the tenant's
    maximum (`allowed_minutes`)."""
    writes = sum(calls.get(action, 0) for action in WRITE_CALLS)
    locks = Lock.objects.filter(tenant=fleet.tenant).count()
    days = (fleet.end - START) / timedelta(days=1)
    minutes = [seconds / 60 for seconds in exposure.values()]
    return {
        "writes": writes,
        "writes_per_code": round(writes / codes, 2) if codes else 0.0,
        "status_polls_per_write": round(calls.get("command_status", 0) / writes, 2) if writes else 0.0,
        "reads_per_lock_per_day": round(calls.get("read_codes", 0) / (locks * days), 2) if locks and days else 0.0,
        "set_in_window_pct": round(100 * set_in_window / started, 2) if started else 100.0,
        "early_exposure": {
            "codes": len(minutes),
            "mean_minutes": round(sum(minutes) / len(minutes), 1) if minutes else 0.0,
            "max_minutes": round(max(minutes, default=0.0), 1),
            "allowed_minutes": fleet.tenant.max_early_exposure_hours * 60,
        },
    }


def _disagrees(code: AccessCode, *, held: bool, right: bool) -> bool:
    """Does the portal's status claim something the lock contradicts? Codes in motion claim nothing."""
    if code.status == CodeStatus.SET or (code.status == CodeStatus.UNSET and code.is_scheduled_on_device):
        return not right
    if code.status in (CodeStatus.REMOVED, CodeStatus.UNSET):
        return held
    return code.status == CodeStatus.FAILED  # a failed code must carry an open issue


def invariant_problems(
    report: dict[str, Any], *, faults: str, per_code: list[dict[str, Any]], coverage_floor: bool = True
) -> list[str]:
    """What `--check` fails on. `coverage_floor=False` (runs with real workers): the 95 % set-in-window floor
    is reported, not enforced — on the compressed clock a real second of vendor latency is a virtual minute
    or two, and a task lost with a killed worker comes back hours of virtual time later, so such codes are
    late by construction; each must still carry an issue (`unexplained` and `late_unflagged` are enforced)."""
    problems = [f"{key} = {report[key]}" for key in
                ("unexplained", "silently_wrong", "duplicate_pins_on_lock", "double_sends", "left_after_end")
                if report[key]]
    if report["set_in_window"] + report["late_with_issue"] != report["started"]:
        problems.append("set_in_window + late_with_issue != started")
    exposure = report.get("early_exposure")
    if exposure and exposure["max_minutes"] > exposure["allowed_minutes"]:
        problems.append(f"a code was live {exposure['max_minutes']} min before its window, more than the tenant's "
                        f"maximum early exposure ({exposure['allowed_minutes']} min)")
    if coverage_floor and report["started"] and report["set_in_window"] < 0.95 * report["started"]:
        problems.append(f"set_in_window {report['set_in_window']} < 95 % of started {report['started']}")
    if faults == "none":
        if report["set_in_window"] != report["started"]:
            problems.append("with no faults every started code must be set in its window")
        odd = [item for item in per_code if item.get("create", 0) != 1 or item.get("delete", 0) != 1]
        if odd:
            problems.append(f"{len(odd)} ended codes without exactly one create and one delete, e.g. {odd[:3]}")
        if report.get("lead_changes"):
            problems.append(f"the adaptive lead moved {report['lead_changes']} time(s) on healthy locks")
    if report["started"] and not report.get("first_use_recorded"):
        problems.append("first_use_recorded = 0: no guest's entry reached a booking")
    if "messages_sent" in report:  # in-process runs tell the guests (guests.py)
        problems += [f"{key} = {report[key]}" for key in ("messages_unconfirmed_pin", "guests_not_told_unexplained")
                     if report[key]]
        if report["started"] and not report["messages_sent"]:
            problems.append("messages_sent = 0: no guest was told their code")
    return problems


def fleet_delete(fleet: Fleet) -> None:
    # Locks first: their provider account is PROTECTed while they exist.
    Lock.objects.filter(tenant=fleet.tenant).delete()
    fleet.tenant.delete()
