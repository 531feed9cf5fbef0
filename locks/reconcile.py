"""Reconciliation (DESIGN §4): what a lock reports, held against what it should hold.

Reads go through the lock's queue like every other piece of lock work (`lock_queue_read`), so a read never
races a write on the lock; the dispatcher performs the read and hands what it saw to `lock_apply_reading`:
missing while it should be there → re-push; on the lock but not ours → `unmanaged_code` issue (adopt or
remove); PIN differs → `desync` issue; another window on a natively scheduling lock → ours sent again;
matching → verified by read-back. Codes with a command queued or
in flight are left alone: their outcome is still coming. `lock_clear` is the second half of "delete all
and reprogram": every code the lock reported is removed through the queue, then every live code is
programmed again behind those removals.

This module sits below the dispatcher (it never calls a vendor), which is why it is not beside the tick
and the sweeper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q

from locks.activity import activity_record
from locks.commands import command_queue_lock_wide, commands_cancel_queued
from locks.conf import engine
from locks.issues import issue_open, issues_resolve
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    Lock,
    LockCommand,
    Verification,
)
from locks.planning import code_push_update, code_requeue_create, lock_reprogram
from portal.encryption import encrypt_str, fingerprint
from providers.base import ObservedCode

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# How far a vendor may move a window it stores: Seam rounds a time-bound code's times by up to an hour by
# default (`max_time_rounding`, "1h") for locks that keep only whole hours. Beyond that, it is another window.
WINDOW_ROUNDING = timedelta(hours=1, minutes=1)


@dataclass
class ReconcileReport:
    readable: bool = True
    matched: list[int] = field(default_factory=list)
    repushed: list[int] = field(default_factory=list)
    desynced: list[int] = field(default_factory=list)
    rescheduled: list[int] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)


def lock_request_reconcile(
    *, lock: Lock, now: datetime, actor: AbstractBaseUser | AnonymousUser | None = None,
    news_at: datetime | None = None,
) -> bool:
    """Something suggests the lock changed (an external edit, a reload): read it at the next due run.
    News from `news_at` that a read after it already answered (a late or repeated webhook) asks for no
    read: a read is a vendor call against the lock's budget. True when a read was asked for."""
    read_since = Lock.objects.filter(pk=lock.pk).values_list("last_reconciled_at", flat=True).first()
    if news_at is not None and read_since is not None and news_at <= read_since:
        return False
    Lock.objects.filter(pk=lock.pk).update(reconcile_requested=True)
    lock.reconcile_requested = True
    activity_record(tenant_id=lock.tenant_id, verb="lock.reconcile_requested",
                    message=f"Reconciliation of {lock.name} requested", now=now, lock_id=lock.pk, actor=actor)
    return True


def lock_queue_read(
    *, lock: Lock, now: datetime, actor: AbstractBaseUser | AnonymousUser | None = None
) -> LockCommand:
    """Queue a read of the lock's codes (one waiting read serves everyone who asks)."""
    return command_queue_lock_wide(lock, CommandAction.READ_CODES, now=now, actor=actor)


def locks_due_for_reconcile(*, now: datetime) -> list[int]:
    old = now - engine().reconcile_every
    reading = LockCommand.objects.filter(
        action=CommandAction.READ_CODES, state__in=[CommandState.QUEUED, CommandState.SENT]
    ).values("lock_id")
    return list(
        Lock.objects.filter(Q(reconcile_requested=True) | Q(last_reconciled_at__isnull=True)
                            | Q(last_reconciled_at__lt=old), managed=True)
        .exclude(pk__in=reading)
        .order_by("last_reconciled_at").values_list("pk", flat=True)
    )


def _should_be_on_lock(code: AccessCode) -> bool:
    return code.status == CodeStatus.SET or (code.status == CodeStatus.UNSET and code.is_scheduled_on_device)


@transaction.atomic
def lock_apply_reading(
    *, lock: Lock, observed: list[ObservedCode] | None, now: datetime,
    command: LockCommand | None = None,
) -> ReconcileReport:
    """The lock reported `observed` (None: it cannot be read): repair the difference and record it."""
    report = ReconcileReport()
    if observed is None:
        report.readable = False
    else:
        _diff(lock, observed, now=now, report=report, reading=command)
    Lock.objects.filter(pk=lock.pk).update(last_reconciled_at=now, reconcile_requested=False)
    lock.last_reconciled_at, lock.reconcile_requested = now, False
    activity_record(
        tenant_id=lock.tenant_id, verb="lock.reconciled", command=command,
        message=(f"Reconciled {lock.name}: {len(report.matched)} matched, {len(report.repushed)} re-pushed, "
                 f"{len(report.desynced)} differ, {len(report.rescheduled)} rescheduled, "
                 f"{len(report.unmanaged)} unmanaged")
        if report.readable else f"{lock.name} cannot report its codes; relying on vendor acknowledgements",
        now=now, lock_id=lock.pk,
        data={"matched": report.matched, "repushed": report.repushed, "desynced": report.desynced,
              "rescheduled": report.rescheduled, "unmanaged": report.unmanaged, "readable": report.readable},
    )
    return report


def _diff(
    lock: Lock, observed: list[ObservedCode], *, now: datetime, report: ReconcileReport, reading: LockCommand | None
) -> None:
    by_ref = {item.vendor_code_ref: item for item in observed if item.vendor_code_ref}
    ours = list(AccessCode.objects.select_related("lock", "tenant").filter(lock=lock).exclude(
        status=CodeStatus.REMOVED))
    pending = lock.commands.filter(state__in=[CommandState.QUEUED, CommandState.SENT])
    if reading is not None:
        pending = pending.exclude(pk=reading.pk)
    busy = set(pending.values_list("access_code_id", flat=True))
    claimed_refs = {code.vendor_code_ref for code in ours if code.vendor_code_ref}
    for code in ours:
        if code.pk in busy or not _should_be_on_lock(code):
            continue
        seen = by_ref.get(code.vendor_code_ref) if code.vendor_code_ref else None
        if seen is None and not code.vendor_code_ref and code.pin:
            seen = next((o for o in observed if o.pin is not None and o.vendor_code_ref not in claimed_refs
                         and observed_carries(o, pin_fingerprint=code.pin_fingerprint, name=code.name)), None)
        if seen is None:
            _repush(code, now=now)
            report.repushed.append(code.pk)
        elif seen.pin is not None and code.pin and seen.pin != code.pin:
            issue_open(lock=lock, code=code, kind=IssueKind.DESYNC, now=now,
                       detail="The PIN on the lock differs from the one we set.",
                       data={"vendor_code_ref": seen.vendor_code_ref})
            report.desynced.append(code.pk)
        elif _window_differs(lock, code, seen):
            _reschedule(code, seen, now=now)
            report.rescheduled.append(code.pk)
        else:
            verification = Verification.READ_BACK if seen.pin is not None else Verification.VENDOR_ACK
            AccessCode.objects.filter(pk=code.pk).update(verification=verification,
                                                         vendor_code_ref=seen.vendor_code_ref)
            issues_resolve(lock=lock, code=code, kinds=[IssueKind.DESYNC], now=now, why="read back matches")
            report.matched.append(code.pk)
    live_refs = {code.vendor_code_ref for code in ours if code.vendor_code_ref}
    removing_refs = set(pending.filter(action=CommandAction.REMOVE_CODE).values_list("target_ref", flat=True))
    foreign = [item for item in observed
               if item.vendor_code_ref not in live_refs and item.vendor_code_ref not in removing_refs
               and item.status != "removing"]
    foreign = [item for item in foreign if not any(
        c.pin and item.pin is not None and not c.vendor_code_ref
        and observed_carries(item, pin_fingerprint=c.pin_fingerprint, name=c.name) for c in ours)]
    if foreign:
        report.unmanaged = [item.vendor_code_ref for item in foreign]
        issue_open(
            lock=lock, code=None, kind=IssueKind.UNMANAGED_CODE, now=now,
            detail=f"{len(foreign)} code(s) on the lock are not managed by Lockstep: "
            + ", ".join(item.name or item.vendor_code_ref for item in foreign),
            # The PINs are kept for "adopt", encrypted like every PIN at rest: issue data is shown and exported.
            data={"codes": [{"vendor_code_ref": item.vendor_code_ref, "name": item.name,
                             "pin_token": encrypt_str(item.pin) if item.pin else ""}
                            for item in foreign]},
        )
    else:
        issues_resolve(lock=lock, code=None, kinds=[IssueKind.UNMANAGED_CODE], now=now, why="no foreign codes")


def observed_carries(item: ObservedCode, *, pin_fingerprint: str, name: str) -> bool:
    """The code the lock reports is the one we sent with this PIN and name: the PIN where the lock reads PINs
    back, and the name wherever it reports one. A PIN alone is not ours: someone may have typed the guest's
    PIN at the keypad under another name, and taking that code for ours would call the guest's code set
    (with no window on the lock) and delete another person's code at check-out."""
    if item.pin is not None and not (pin_fingerprint and fingerprint(item.pin) == pin_fingerprint):
        return False
    if item.name:
        return item.name == name
    return item.pin is not None  # a lock that reports neither name nor PIN: nothing says it is ours


def _window_differs(lock: Lock, code: AccessCode, seen: ObservedCode) -> bool:
    """A natively scheduling lock reports another window for the code than the one we sent (beyond the
    vendor's rounding): it will open and close the door at the wrong times — e.g. a stay moved, and the
    vendor said the update was done while the lock kept the old window."""
    if not lock.native_scheduling or None in (seen.starts_at, seen.ends_at, code.starts_at, code.ends_at):
        return False
    assert seen.starts_at and seen.ends_at and code.starts_at and code.ends_at  # for the type checker
    return (abs(seen.starts_at - code.starts_at) > WINDOW_ROUNDING
            or abs(seen.ends_at - code.ends_at) > WINDOW_ROUNDING)


def _reschedule(code: AccessCode, seen: ObservedCode, *, now: datetime) -> None:
    """The PIN is right but the window is not: send ours again (an update), as for a moved stay."""
    activity_record(tenant_id=code.tenant_id, verb="code.window_differs", now=now, code=code,
                    message=f"The lock holds {code.name!r} for another window; sending ours again",
                    data={"lock_starts_at": str(seen.starts_at), "lock_ends_at": str(seen.ends_at)})
    code_push_update(code=code, now=now, actor=None)


def _repush(code: AccessCode, *, now: datetime) -> None:
    """The code should be on the lock and is not: program it again from scratch."""
    activity_record(tenant_id=code.tenant_id, verb="code.missing",
                    message=f"{code.name!r} is missing on the lock; programming it again", now=now, code=code)
    AccessCode.objects.filter(pk=code.pk).update(vendor_code_ref="", is_scheduled_on_device=False,
                                                 verification=Verification.NONE)
    code.vendor_code_ref, code.is_scheduled_on_device = "", False
    code_requeue_create(code=code, now=now, note="missing on the lock")


@transaction.atomic
def lock_clear(*, lock: Lock, refs: list[str], now: datetime, command: LockCommand | None = None) -> int:
    """Delete all and reprogram, once the lock has said what it holds (`refs`): queue the removal of each,
    then every live code again behind them, one command at a time like everything else."""
    # Creates and updates queued now would only be sent again; deletes of ended codes must still happen.
    commands_cancel_queued(lock=lock, now=now, actions=(CommandAction.CREATE, CommandAction.UPDATE))
    being_deleted = set(
        AccessCode.objects.filter(lock=lock, status=CodeStatus.REMOVING).exclude(vendor_code_ref="")
        .values_list("vendor_code_ref", flat=True)
    )
    refs = [ref for ref in refs if ref not in being_deleted]
    for ref in refs:
        command_queue_lock_wide(lock, CommandAction.REMOVE_CODE, now=now, target_ref=ref)
    requeued = lock_reprogram(lock=lock, now=now)
    activity_record(
        tenant_id=lock.tenant_id, verb="lock.delete_all", command=command, now=now, lock_id=lock.pk,
        message=f"Clearing {lock.name}: {len(refs)} code(s) to delete, then {requeued} to program again",
        data={"refs": refs, "requeued": requeued},
    )
    # Queued is not gone: the unmanaged-code and desync issues stay open until a read of the lock, queued
    # behind the removals and the codes programmed again, finds it as it should be (a removal can wait behind
    # a busy lock for minutes, and meanwhile a past guest's PIN may still open the door).
    if refs:
        lock_queue_read(lock=lock, now=now)
    return requeued
