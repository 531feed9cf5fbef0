"""Reads for pages, alerts and the engine: the attention rule and queue (DESIGN §7 dashboard), counts,
open issues, a lock's work in progress."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from locks import pins
from locks.conf import engine
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    Lock,
    LockCommand,
    LockIssue,
)

if TYPE_CHECKING:
    from portal.models import Property, Tenant
    from providers.models import ProviderAccount


def codes_not_on_lock(
    codes: QuerySet[AccessCode], *, now: datetime, within: timedelta | None = None
) -> QuerySet[AccessCode]:
    """The attention rule, written once: codes whose window starts within `within` (default: the
    attention window) and has not ended, that the lock has not confirmed (a preloaded code counts as on
    the lock). The dashboard lists them, the alerts mail the late ones, the tick flags those already due."""
    horizon = now + (engine().attention_window if within is None else within)
    return codes.filter(
        status__in=[CodeStatus.UNSET, CodeStatus.SETTING], starts_at__lte=horizon, ends_at__gt=now
    ).exclude(status=CodeStatus.UNSET, is_scheduled_on_device=True)


def code_is_confirmed(code: AccessCode) -> bool:
    """On the door, as the lock or its vendor confirmed: `set`, or preloaded and confirmed on a lock that
    schedules natively (waiting for its window). The one rule for what a guest may be shown or told."""
    return code.status == CodeStatus.SET or (code.status == CodeStatus.UNSET and code.is_scheduled_on_device)


def codes_with_unknown_pin(*, lock: Lock, now: datetime) -> QuerySet[AccessCode]:
    """Codes that clearing the lock would program again (as `planning.lock_reprogram` picks them) but
    whose PIN Lockstep does not know (adopted from a lock that cannot read PINs back): clearing the lock
    loses them unless someone gives their PIN. None when the lock chooses its own PINs."""
    if pins.lock_chooses_pin(lock.requirements or {}):
        return AccessCode.objects.none()
    return (
        AccessCode.objects.filter(lock=lock, pin="")
        .filter(Q(status__in=[CodeStatus.SETTING, CodeStatus.SET, CodeStatus.FAILED])
                | Q(status=CodeStatus.UNSET, is_scheduled_on_device=True))
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .order_by("name", "id")
    )


@dataclass(frozen=True)
class AttentionItem:
    """One thing staff should look at. `kind`: code_overstay, code_not_set, code_failed, lock_offline,
    lock_low_battery, account_auth_failed, guest_not_told. Exactly one of code / lock / account is the subject (code items carry its lock)."""

    kind: str
    title: str
    detail: str
    since: datetime | None
    code: AccessCode | None = None
    lock: Lock | None = None
    account: ProviderAccount | None = None


def _open_code_issues(
    tenant: Tenant, kind: str, *, property_ids: list[int] | None
) -> Iterator[tuple[LockIssue, AccessCode]]:
    """Open issues of `kind` on a code, oldest first, with their code (and its lock and booking)."""
    issues = (LockIssue.objects.for_tenant(tenant).filter(kind=kind, status=IssueStatus.OPEN)
              .select_related("access_code__lock", "access_code__booking").order_by("first_seen_at", "pk"))
    if property_ids is not None:
        issues = issues.filter(lock__property_id__in=property_ids)
    for issue in issues:
        if issue.access_code is not None:
            yield issue, issue.access_code


def tenant_codes(*, tenant: Tenant, properties: Any = None) -> QuerySet[AccessCode]:
    """A tenant's codes (of `properties`' doors, given a queryset or list of them), reached through its locks:
    `lock IN (the tenant's locks)`, so PostgreSQL answers from the `(lock, status)` index and reads the few live
    codes of those doors. Filtered by tenant and status alone, it estimated a tenant with a long history from
    the whole table (700 live codes for 2) and hashed every door of every tenant to join them: 50–80 ms of the
    dashboard for one property at 10,000 doors, against well under a millisecond this way (bench/pages.py)."""
    locks = Lock.objects.for_tenant(tenant)
    if properties is not None:
        locks = locks.filter(property__in=properties)
    return AccessCode.objects.for_tenant(tenant).filter(lock__in=locks.values("pk"))


def attention_queue(
    *, tenant: Tenant, now: datetime, properties: Iterable[Property] | None = None
) -> list[AttentionItem]:
    """Codes still on the lock after check-out, guests not told their codes, codes starting within 24 h that are not set, failed codes,
    offline or low-battery locks and accounts whose credentials the vendor rejected — most urgent first.
    `properties` narrows it (owners)."""
    from providers.models import AccountStatus, ProviderAccount

    settings = engine()
    locks = Lock.objects.for_tenant(tenant).filter(managed=True).select_related("property")
    property_ids: list[int] | None = None
    if properties is not None:
        property_ids = [p.pk for p in properties]
        locks = locks.filter(property_id__in=property_ids)
    codes = tenant_codes(tenant=tenant, properties=property_ids).select_related("lock", "booking")
    items: list[AttentionItem] = []
    # First: a guest's PIN that may still open the door after check-out (an open overstay issue).
    for issue, code in _open_code_issues(tenant, IssueKind.OVERSTAY, property_ids=property_ids):
        items.append(AttentionItem(
            kind="code_overstay", title=f"{code.name} is still on {code.lock.name} after check-out",
            detail=(f"ended {code.ends_at:%Y-%m-%d %H:%M} UTC" if code.ends_at else "")
            + " — the guest's PIN may still open the door",
            since=issue.first_seen_at, code=code, lock=code.lock,
        ))
    # A guest whose code message is held because a door has not confirmed their code (portal/messages.py).
    for issue, code in _open_code_issues(tenant, IssueKind.GUEST_NOT_TOLD, property_ids=property_ids):
        items.append(AttentionItem(
            kind="guest_not_told", title=f"guest not told: {code.lock.name} not confirmed",
            detail="staff alerted: no backup code" if issue.data.get("escalated") else "the code message is held",
            since=issue.first_seen_at, code=code, lock=code.lock,
        ))
    # A failed code stays listed a week past its end: a delete that failed leaves a guest code on the door.
    recent_failures = codes.filter(status=CodeStatus.FAILED).exclude(
        ends_at__lte=now - timedelta(days=settings.FAILED_SHOWN_DAYS)
    )
    for code in recent_failures.order_by("starts_at"):
        items.append(AttentionItem(
            kind="code_failed", title=f"{code.name} on {code.lock.name} failed",
            detail=code.last_reason or "failed", since=code.updated_at, code=code, lock=code.lock,
        ))
    not_set = codes_not_on_lock(codes, now=now).order_by("starts_at")
    for code in not_set:
        items.append(AttentionItem(
            kind="code_not_set", title=f"{code.name} on {code.lock.name} is not on the lock yet",
            # The start is written by the page, in the property's zone (DESIGN §7).
            detail=f"last error: {code.last_reason}" if code.last_reason else "",
            since=code.starts_at, code=code, lock=code.lock,
        ))
    for lock in locks.filter(online=False):
        items.append(AttentionItem(kind="lock_offline", title=f"{lock.name} is offline",
                                   detail=lock.property.name if lock.property else "unassigned", since=lock.last_seen_at, lock=lock))
    for lock in locks.filter(battery_level__lt=settings.LOW_BATTERY_LEVEL):
        items.append(AttentionItem(kind="lock_low_battery", title=f"{lock.name} battery low",
                                   detail=f"{lock.battery_level:.0%}", since=None, lock=lock))
    accounts = ProviderAccount.objects.for_tenant(tenant).filter(status=AccountStatus.AUTH_FAILED)
    if properties is not None:
        accounts = accounts.filter(locks__property_id__in=property_ids).distinct()
    for account in accounts:
        items.append(AttentionItem(kind="account_auth_failed", title=f"{account.name}: credentials rejected",
                                   detail=account.status_detail, since=account.last_checked_at, account=account))
    return items


def code_counts(*, codes: Any) -> dict[str, int]:
    """{status: count} for a queryset of codes, every status present (zeros included)."""
    counts = dict(codes.order_by().values_list("status").annotate(n=Count("id")))
    return {status: counts.get(status, 0) for status in CodeStatus.values}


def open_issues(*, tenant: Tenant, kind: str | None = None) -> Any:
    qs = LockIssue.objects.for_tenant(tenant).filter(status=IssueStatus.OPEN).select_related("lock", "access_code")
    return qs.filter(kind=kind) if kind else qs



def lock_work(*, lock: Lock) -> list[LockCommand]:
    """Lock-wide work (read, reload, delete all, remove a foreign code) waiting or running on the lock."""
    return list(
        LockCommand.objects.filter(lock=lock, access_code__isnull=True,
                                   state__in=[CommandState.QUEUED, CommandState.SENT]).order_by("id")
    )


def lock_slot_holders(*, lock: Lock, exclude_code_id: int | None = None) -> list[str]:
    """Names of what takes a code slot on the lock while a new code would be on it: every code of ours on
    (or sent to) the lock and not yet confirmed gone — preloads included, ended ones still being removed
    included — and the unmanaged codes last seen on it (its open `unmanaged_code` issue). Codes still
    waiting for their programming time take no slot yet; they are checked when their turn comes."""
    sent = LockCommand.objects.filter(access_code=OuterRef("pk"), sent_at__isnull=False)
    holding = (
        Q(status__in=[CodeStatus.SET, CodeStatus.REMOVING])
        | Q(status=CodeStatus.UNSET, is_scheduled_on_device=True)
        | (Q(status=CodeStatus.SETTING) & (~Q(vendor_code_ref="") | Exists(sent)))
        | (Q(status=CodeStatus.FAILED) & ~Q(vendor_code_ref=""))
    )
    codes = AccessCode.objects.filter(lock=lock).filter(holding)
    if exclude_code_id is not None:
        codes = codes.exclude(pk=exclude_code_id)
    names = list(codes.order_by("starts_at", "pk").values_list("name", flat=True))
    unmanaged = LockIssue.objects.filter(lock=lock, access_code__isnull=True, kind=IssueKind.UNMANAGED_CODE,
                                         status=IssueStatus.OPEN)
    for data in unmanaged.values_list("data", flat=True):
        names += [f"{item.get('name') or item.get('vendor_code_ref')} (not managed by Lockstep)"
                  for item in (data or {}).get("codes", [])]
    return names
