"""Adaptive programming lead (DESIGN §4 "Adaptive lead", "Windows are a security boundary").

A lock that does not schedule codes itself gets each code a little before the code's window (the standard
just-in-time lead). One that has shown failures or slow answers gets its codes earlier, so that a code
reaches the door before the guest with high probability — but never earlier than the tenant's maximum
early exposure: a code on such a lock opens the door from the moment it lands. Natively scheduling locks
keep their preload; the lock enforces the window.

The lead is learnt from the lock's last finished writes each time one of them finishes
(`lock_lead_refresh`: one indexed query), stored on the lock with what it was learnt from, and the lock's
codes that are not programmed yet are re-timed there and then. The tick reads nothing but `program_at`.

How much earlier: with the lock's failure rate p over its record, plan for the k failures in a row that are
likelier than LEAD_MISS_CHANCE (p^(k+1) ≤ LEAD_MISS_CHANCE, at most one per retry the backoff table allows),
each costing what the lock's failures took on average plus the retry's backoff; and for its slowest
confirmation beyond its vendor's normal latency. A lock with no failure and no slow answer in its record
keeps the standard lead exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from locks.activity import activity_record
from locks.conf import engine
from locks.models import AccessCode, CodeStatus, CommandAction, CommandState, Lock, LockCommand
from providers.base import is_transient

WRITES = (CommandAction.CREATE, CommandAction.UPDATE, CommandAction.DELETE)
FINISHED = (CommandState.SUCCEEDED, CommandState.FAILED, CommandState.TIMED_OUT)
# The smallest maximum early exposure a tenant can choose (portal/forms_settings.py): a lead within it
# needs no look at the tenant.
MIN_EXPOSURE_HOURS = 1


@dataclass(frozen=True)
class Finished:
    """One finished write of the lock, as the lead sees it."""

    state: str
    reason: str
    took: timedelta  # sent → finished

    @property
    def failed(self) -> bool:
        """The lock's (or its cloud's) doing: no answer, or a refusal that a retry may overcome. A permanent
        refusal (a clashing or invalid PIN) says nothing about how reliably the lock answers."""
        return self.state == CommandState.TIMED_OUT or (self.state == CommandState.FAILED and is_transient(self.reason))


@dataclass(frozen=True)
class Lead:
    minutes: int | None  # None: the standard just-in-time lead
    commands: int = 0  # the record it was learnt from: how many finished writes ...
    failed: int = 0  # ... how many of them failed ...
    slowest_seconds: int = 0  # ... and the slowest confirmation among the others

    def basis(self) -> dict[str, int]:
        return {key: value for key, value in asdict(self).items() if key != "minutes"}


def lead_learn(record: Sequence[Finished], *, normal_latency: timedelta) -> Lead:
    """The lead a lock with this record of finished writes (newest first) should get."""
    knobs = engine()
    failures = [item for item in record if item.failed]
    slowest = max((item.took for item in record if item.state == CommandState.SUCCEEDED), default=timedelta(0))
    extra = max(slowest - on_time(normal_latency), timedelta(0))
    if failures:
        rate = len(failures) / len(record)
        cost = sum((item.took for item in failures), timedelta(0)) / len(failures)
        for retry in range(_failures_to_plan_for(rate)):
            extra += cost + timedelta(minutes=knobs.BACKOFF_MINUTES[retry])
    basis = {"commands": len(record), "failed": len(failures), "slowest_seconds": int(slowest.total_seconds())}
    if extra <= timedelta(0):
        return Lead(None, **basis)
    steps = math.ceil(extra / timedelta(minutes=knobs.LEAD_STEP_MINUTES))
    return Lead(knobs.JUST_IN_TIME_MINUTES + steps * knobs.LEAD_STEP_MINUTES, **basis)


def on_time(normal_latency: timedelta) -> timedelta:
    """A confirmation within this is on time: the vendor's normal latency, or the time the sweeper waits
    before asking (a webhook-less answer comes no sooner; the standard lead has room for both)."""
    return max(normal_latency, timedelta(minutes=engine().SWEEP_STALE_MINUTES))


def _failures_to_plan_for(rate: float) -> int:
    """The fewest failures in a row k such that k + 1 of them are no likelier than LEAD_MISS_CHANCE."""
    knobs = engine()
    most = len(knobs.BACKOFF_MINUTES)
    if rate >= 1:
        return most
    k = math.ceil(math.log(knobs.LEAD_MISS_CHANCE) / math.log(rate) - 1e-9) - 1 if rate > 0 else 0
    return min(max(k, 1), most)


def lock_lead(lock: Lock) -> timedelta:
    """How long before a code's start it goes to `lock`: the native preload, or the lock's learnt lead
    capped at its tenant's maximum early exposure."""
    knobs = engine()
    if lock.native_scheduling:
        return timedelta(hours=knobs.NATIVE_PRELOAD_HOURS)
    minutes = lock.lead_minutes or knobs.JUST_IN_TIME_MINUTES
    if minutes > MIN_EXPOSURE_HOURS * 60:
        minutes = min(minutes, lock.tenant.max_early_exposure_hours * 60)
    return timedelta(minutes=minutes)


def lock_record(lock_id: int) -> list[Finished]:
    """The lock's last finished writes, newest first (rides `command_recent_per_lock`)."""
    rows = (
        LockCommand.objects.filter(lock_id=lock_id, action__in=WRITES, state__in=FINISHED, sent_at__isnull=False)
        .order_by("-id").values_list("state", "reason", "sent_at", "finished_at")[:engine().LEAD_RECORD_COMMANDS]
    )
    return [Finished(state=state, reason=reason, took=max((finished or sent) - sent, timedelta(0)))
            for state, reason, sent, finished in rows]


def lock_lead_refresh(*, lock_id: int, now: datetime) -> Lead | None:
    """A write of the lock finished: learn its lead again; when it moved, store it and re-time the lock's
    codes that are not programmed yet. Returns the new lead when it moved."""
    lock = Lock.objects.select_related("provider_account", "tenant").filter(pk=lock_id).first()
    if lock is None or lock.native_scheduling:
        return None
    lead = lead_learn(lock_record(lock_id), normal_latency=engine().normal_latency(_vendor(lock)))
    if lead.minutes == lock.lead_minutes:
        if lead.basis() != lock.lead_basis:
            Lock.objects.filter(pk=lock_id).update(lead_basis=lead.basis())
        return None
    Lock.objects.filter(pk=lock_id).update(lead_minutes=lead.minutes, lead_basis=lead.basis())
    before, lock.lead_minutes, lock.lead_basis = lock.lead_minutes, lead.minutes, lead.basis()
    moved = lock_codes_retime(lock=lock, now=now)
    activity_record(
        tenant_id=lock.tenant_id, verb="lock.lead_changed", lock_id=lock.pk, now=now,
        message=f"{lock.name}: {lead_explained(lock)}",
        data={"from_minutes": before, "to_minutes": lead.minutes, "codes_moved": moved, **lead.basis()},
    )
    return lead


def _vendor(lock: Lock) -> str:
    return lock.provider_account.vendor


def lock_codes_retime(*, lock: Lock, now: datetime) -> int:
    """Give the lock's codes that wait for their programming time the lock's current lead (never before
    now). Returns how many moved."""
    lead = lock_lead(lock)
    waiting = list(AccessCode.objects.filter(
        lock=lock, status=CodeStatus.UNSET, is_scheduled_on_device=False, starts_at__isnull=False
    ).only("pk", "starts_at", "program_at"))
    moved = []
    for code in waiting:
        assert code.starts_at is not None
        program_at = max(code.starts_at - lead, now)
        if code.program_at != program_at and not (code.program_at is not None and code.program_at <= now
                                                  and program_at <= now):
            code.program_at = program_at
            moved.append(code)
    AccessCode.objects.bulk_update(moved, ["program_at"])
    return len(moved)


def tenant_codes_retime(*, tenant_id: int, now: datetime) -> int:
    """The tenant's maximum early exposure changed: every lock of it with a learnt lead re-times its codes."""
    locks = Lock.objects.select_related("tenant").filter(tenant_id=tenant_id, native_scheduling=False,
                                                         lead_minutes__isnull=False)
    return sum(lock_codes_retime(lock=lock, now=now) for lock in locks)


def lead_explained(lock: Lock) -> str:
    """Why the lock's codes go out when they do, in an operator's words."""
    lead = lock_lead(lock)
    ahead = _duration(lead)
    if lock.native_scheduling:
        return f"Codes are scheduled on this lock {ahead} ahead; the lock itself opens them only in their window."
    basis = lock.lead_basis or {}
    if lock.lead_minutes is None:
        return f"Codes are programmed {ahead} ahead, the standard lead: this lock has answered well lately."
    reasons = []
    if basis.get("failed"):
        reasons.append(f"this lock failed {basis['failed']} of its last {basis.get('commands', 0)} commands")
    slowest = int(basis.get("slowest_seconds") or 0)
    if slowest > on_time(engine().normal_latency(_vendor(lock))).total_seconds():
        reasons.append(f"it took up to {_duration(timedelta(seconds=slowest))} to confirm a change")
    why = " and ".join(reasons) or "of how it answered lately"
    capped = lead < timedelta(minutes=lock.lead_minutes)
    limit = " (the most your tenant allows)" if capped else ""
    return f"Programmed {ahead} ahead{limit} because {why}."


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return f"{int(span.total_seconds())} s"
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")
