"""The one writer of LockIssue rows (DESIGN §3, §4): open (or bump), resolve when the facts change,
dismiss when staff say so. At most one open issue per (lock, code, kind), by a unique index."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F

from locks.activity import activity_record
from locks.models import AccessCode, IssueStatus, Lock, LockCommand, LockIssue
from locks.transitions import TransitionError

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def issue_open(
    *,
    lock: Lock,
    code: AccessCode | None,
    kind: str,
    now: datetime,
    command: LockCommand | None = None,
    detail: str = "",
    data: dict[str, Any] | None = None,
    vendor_said: str | None = None,
    our_inference: str | None = None,
) -> LockIssue:
    """Open an issue, or bump the open one for (lock, code, kind). `vendor_said` quotes the vendor only;
    `our_inference` is what Lockstep concluded itself. Pages label them apart (`detail` holds either)."""
    if vendor_said is not None or our_inference is not None:
        data = {**(data or {}), "vendor_said": vendor_said or "", "our_inference": our_inference or ""}
        detail = detail or our_inference or vendor_said or ""
    for _ in range(2):
        existing = LockIssue.objects.filter(lock=lock, access_code=code, kind=kind, status=IssueStatus.OPEN).first()
        if existing is not None:
            changes: dict[str, Any] = {"last_seen_at": now, "occurrences": F("occurrences") + 1}
            if detail:
                changes["detail"] = detail
            if command is not None:
                changes["command"] = command
            if data:
                changes["data"] = {**existing.data, **data}
            LockIssue.objects.filter(pk=existing.pk).update(**changes)
            existing.refresh_from_db()
            return existing
        try:
            with transaction.atomic():
                issue = LockIssue.objects.create(
                    tenant_id=lock.tenant_id, lock=lock, access_code=code, command=command, kind=kind,
                    first_seen_at=now, last_seen_at=now, detail=detail, data=data or {},
                )
        except IntegrityError:
            continue  # someone opened it at the same moment: bump theirs
        activity_record(
            tenant_id=lock.tenant_id, verb="issue.opened", message=f"Issue opened: {issue.get_kind_display()}",
            now=now, lock_id=lock.pk, code=code, command=command, data={"issue": issue.pk, "kind": kind},
        )
        return issue
    raise RuntimeError("could not open or bump the issue")  # pragma: no cover - needs a third racer


def issues_resolve(
    *, lock: Lock, code: AccessCode | None, kinds: Iterable[str] | None, now: datetime, why: str
) -> int:
    """Resolve open issues of (lock, code) — of `kinds`, or all when None — because the facts changed."""
    qs = LockIssue.objects.filter(lock=lock, status=IssueStatus.OPEN)
    qs = qs.filter(access_code=code) if code is not None else qs.filter(access_code__isnull=True)
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    resolved = 0
    for issue in qs:
        if LockIssue.objects.filter(pk=issue.pk, status=IssueStatus.OPEN).update(
            status=IssueStatus.RESOLVED, resolved_at=now
        ):
            resolved += 1
            activity_record(
                tenant_id=lock.tenant_id, verb="issue.resolved",
                message=f"Issue resolved: {issue.get_kind_display()} ({why})", now=now, lock_id=lock.pk,
                code=code, data={"issue": issue.pk, "kind": issue.kind},
            )
    return resolved


def issue_resolve(*, issue: LockIssue, now: datetime, why: str) -> bool:
    """Resolve one issue (an action dealt with it)."""
    if not LockIssue.objects.filter(pk=issue.pk, status=IssueStatus.OPEN).update(
        status=IssueStatus.RESOLVED, resolved_at=now
    ):
        return False
    issue.status, issue.resolved_at = IssueStatus.RESOLVED, now
    activity_record(
        tenant_id=issue.tenant_id, verb="issue.resolved", message=f"Issue resolved: {issue.get_kind_display()} ({why})",
        now=now, lock_id=issue.lock_id, code=issue.access_code, data={"issue": issue.pk, "kind": issue.kind},
    )
    return True


def issue_dismiss(*, issue: LockIssue, actor: AbstractBaseUser | AnonymousUser | None, now: datetime) -> None:
    if not LockIssue.objects.filter(pk=issue.pk, status=IssueStatus.OPEN).update(
        status=IssueStatus.DISMISSED, resolved_at=now
    ):
        raise TransitionError("Only an open issue can be dismissed.")
    issue.status, issue.resolved_at = IssueStatus.DISMISSED, now
    activity_record(
        tenant_id=issue.tenant_id, verb="issue.dismissed", message=f"Issue dismissed: {issue.get_kind_display()}",
        now=now, lock_id=issue.lock_id, code=issue.access_code, actor=actor, data={"issue": issue.pk},
    )
