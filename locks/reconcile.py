"""Reconciliation (DESIGN §4): read what the vendor reports on a lock and repair the difference.

missing while it should be there → re-push; on the lock but not ours → `unmanaged_code` issue (adopt or
remove); PIN differs → `desync` issue; matching → verified by read-back. Codes with a command queued or
in flight are left alone: their outcome is still coming.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q

from locks import services
from locks.models import AccessCode, CodeStatus, CommandAction, CommandState, IssueKind, Lock, Verification
from portal.encryption import encrypt_str
from providers.base import ObservedCode, Outcome, Progress, ProviderError

RECONCILE_EVERY = timedelta(hours=6)


@dataclass
class ReconcileReport:
    readable: bool = True
    matched: list[int] = field(default_factory=list)
    repushed: list[int] = field(default_factory=list)
    desynced: list[int] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)


def _should_be_on_lock(code: AccessCode) -> bool:
    return code.status == CodeStatus.SET or (code.status == CodeStatus.UNSET and code.is_scheduled_on_device)


def lock_reconcile(*, lock: Lock, now: datetime, actor: AbstractBaseUser | None = None) -> ReconcileReport:
    from providers.registry import get_provider

    report = ReconcileReport()
    try:
        observed = get_provider(lock.provider_account).read_codes(lock)
    except ProviderError as exc:
        services.activity_record(tenant_id=lock.tenant_id, verb="lock.reconcile_failed",
                                 message=f"Could not read codes on {lock.name}: {exc}", now=now, lock_id=lock.pk,
                                 actor=actor)
        return ReconcileReport(readable=False)
    with transaction.atomic():
        if observed is None:
            report.readable = False
        else:
            _diff(lock, observed, now=now, report=report)
        Lock.objects.filter(pk=lock.pk).update(last_reconciled_at=now, reconcile_requested=False)
        lock.last_reconciled_at, lock.reconcile_requested = now, False
        services.activity_record(
            tenant_id=lock.tenant_id, verb="lock.reconciled",
            message=(f"Reconciled {lock.name}: {len(report.matched)} matched, {len(report.repushed)} re-pushed, "
                     f"{len(report.desynced)} differ, {len(report.unmanaged)} unmanaged")
            if report.readable else f"{lock.name} cannot report its codes; relying on vendor acknowledgements",
            now=now, lock_id=lock.pk, actor=actor,
            data={"matched": report.matched, "repushed": report.repushed, "desynced": report.desynced,
                  "unmanaged": report.unmanaged, "readable": report.readable},
        )
    return report


def _diff(lock: Lock, observed: list[ObservedCode], *, now: datetime, report: ReconcileReport) -> None:
    by_ref = {item.vendor_code_ref: item for item in observed if item.vendor_code_ref}
    ours = list(AccessCode.objects.select_related("lock", "tenant").filter(lock=lock).exclude(
        status=CodeStatus.REMOVED))
    busy = set(
        lock.commands.filter(state__in=[CommandState.QUEUED, CommandState.SENT]).values_list(
            "access_code_id", flat=True)
    )
    claimed_refs = {code.vendor_code_ref for code in ours if code.vendor_code_ref}
    _complete_in_flight(lock, by_ref, now=now, report=report)
    for code in ours:
        if code.pk in busy or not _should_be_on_lock(code):
            continue
        seen = by_ref.get(code.vendor_code_ref) if code.vendor_code_ref else None
        if seen is None and not code.vendor_code_ref and code.pin:
            seen = next((o for o in observed if o.pin == code.pin and o.vendor_code_ref not in claimed_refs), None)
        if seen is None:
            _repush(code, now=now)
            report.repushed.append(code.pk)
        elif seen.pin is not None and code.pin and seen.pin != code.pin:
            services.issue_open(lock=lock, code=code, kind=IssueKind.DESYNC, now=now,
                                detail="The PIN on the lock differs from the one we set.",
                                data={"vendor_code_ref": seen.vendor_code_ref})
            report.desynced.append(code.pk)
        else:
            verification = Verification.READ_BACK if seen.pin is not None else Verification.VENDOR_ACK
            AccessCode.objects.filter(pk=code.pk).update(verification=verification,
                                                         vendor_code_ref=seen.vendor_code_ref)
            services.issues_resolve(lock=lock, code=code, kinds=[IssueKind.DESYNC], now=now, why="read back matches")
            report.matched.append(code.pk)
    live_refs = {code.vendor_code_ref for code in ours if code.status != CodeStatus.REMOVED and code.vendor_code_ref}
    foreign = [item for item in observed if item.vendor_code_ref not in live_refs and item.status != "removing"]
    foreign = [item for item in foreign if not any(c.pin and item.pin == c.pin and not c.vendor_code_ref
                                                   for c in ours)]
    if foreign:
        report.unmanaged = [item.vendor_code_ref for item in foreign]
        services.issue_open(
            lock=lock, code=None, kind=IssueKind.UNMANAGED_CODE, now=now,
            detail=f"{len(foreign)} code(s) on the lock are not managed by Lockstep: "
            + ", ".join(item.name or item.vendor_code_ref for item in foreign),
            # The PINs are kept for "adopt", encrypted like every PIN at rest: issue data is shown and exported.
            data={"codes": [{"vendor_code_ref": item.vendor_code_ref, "name": item.name,
                             "pin_token": encrypt_str(item.pin) if item.pin else ""}
                            for item in foreign]},
        )
    else:
        services.issues_resolve(lock=lock, code=None, kinds=[IssueKind.UNMANAGED_CODE], now=now,
                                why="no foreign codes")


def _complete_in_flight(
    lock: Lock, by_ref: dict[str, ObservedCode], *, now: datetime, report: ReconcileReport
) -> None:
    """A read-back is an outcome too: it settles the in-flight command when it proves the result (the PIN
    read back for a create/update, the slot gone for a delete)."""
    command = lock.commands.select_related("access_code__lock").filter(state=CommandState.SENT).first()
    if command is None or command.access_code is None or not command.access_code.vendor_code_ref:
        return
    code = command.access_code
    seen = by_ref.get(code.vendor_code_ref)
    if command.action == CommandAction.DELETE:
        proven = seen is None
    else:
        proven = seen is not None and seen.pin is not None and seen.pin == code.pin
    if proven and services.command_complete(
        command=command, outcome=Outcome(Progress.DONE, vendor_code_ref=code.vendor_code_ref), now=now,
        source="reconcile",
    ):
        report.matched.append(code.pk)


def _repush(code: AccessCode, *, now: datetime) -> None:
    """The code should be on the lock and is not: program it again from scratch."""
    services.activity_record(tenant_id=code.tenant_id, verb="code.missing",
                             message=f"{code.name!r} is missing on the lock; programming it again", now=now, code=code)
    AccessCode.objects.filter(pk=code.pk).update(vendor_code_ref="", is_scheduled_on_device=False,
                                                 verification=Verification.NONE)
    code.vendor_code_ref, code.is_scheduled_on_device = "", False
    services.code_requeue_create(code=code, now=now, note="missing on the lock")


def locks_due_for_reconcile(*, now: datetime) -> list[int]:
    old = now - RECONCILE_EVERY
    return list(
        Lock.objects.filter(Q(reconcile_requested=True) | Q(last_reconciled_at__isnull=True)
                            | Q(last_reconciled_at__lt=old)).order_by("last_reconciled_at").values_list("pk", flat=True)
    )
