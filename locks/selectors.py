"""Reads for pages and the API: the attention queue and a lock's health (DESIGN §7 dashboard)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count

from locks.models import AccessCode, CodeStatus, CommandState, IssueStatus, Lock, LockCommand, LockIssue
from locks.services import LOW_BATTERY_LEVEL

if TYPE_CHECKING:
    from portal.models import Property, Tenant
    from providers.models import ProviderAccount


FAILED_SHOWN_AFTER_END = timedelta(days=7)


@dataclass(frozen=True)
class AttentionItem:
    """One thing staff should look at. `kind`: code_not_set, code_failed, lock_offline, lock_low_battery,
    account_auth_failed. Exactly one of code / lock / account is the subject (code items carry its lock)."""

    kind: str
    title: str
    detail: str
    since: datetime | None
    code: AccessCode | None = None
    lock: Lock | None = None
    account: ProviderAccount | None = None


def attention_queue(
    *, tenant: Tenant, now: datetime, properties: Iterable[Property] | None = None
) -> list[AttentionItem]:
    """Codes starting within 24 h that are not set, failed codes, offline or low-battery locks and
    accounts whose credentials the vendor rejected — most urgent first. `properties` narrows it (owners)."""
    from providers.models import AccountStatus, ProviderAccount

    horizon = now + timedelta(hours=int(settings.LOCKSTEP.get("ATTENTION_HOURS", 24)))
    codes = AccessCode.objects.for_tenant(tenant).select_related("lock", "booking")
    locks = Lock.objects.for_tenant(tenant).select_related("property")
    if properties is not None:
        property_ids = [p.pk for p in properties]
        codes = codes.filter(lock__property_id__in=property_ids)
        locks = locks.filter(property_id__in=property_ids)
    items: list[AttentionItem] = []
    # A failed code stays listed a week past its end: a delete that failed leaves a guest code on the door.
    recent_failures = codes.filter(status=CodeStatus.FAILED).exclude(ends_at__lte=now - FAILED_SHOWN_AFTER_END)
    for code in recent_failures.order_by("starts_at"):
        items.append(AttentionItem(
            kind="code_failed", title=f"{code.name} on {code.lock.name} failed",
            detail=code.last_reason or "failed", since=code.updated_at, code=code, lock=code.lock,
        ))
    not_set = codes.filter(
        status__in=[CodeStatus.UNSET, CodeStatus.SETTING], starts_at__lte=horizon, ends_at__gt=now
    ).exclude(status=CodeStatus.UNSET, is_scheduled_on_device=True).order_by("starts_at")
    for code in not_set:
        items.append(AttentionItem(
            kind="code_not_set", title=f"{code.name} on {code.lock.name} is not on the lock yet",
            detail=(f"starts {code.starts_at:%Y-%m-%d %H:%M} UTC" if code.starts_at else "")
            + (f" — last error: {code.last_reason}" if code.last_reason else ""),
            since=code.starts_at, code=code, lock=code.lock,
        ))
    for lock in locks.filter(online=False):
        items.append(AttentionItem(kind="lock_offline", title=f"{lock.name} is offline",
                                   detail=lock.property.name, since=lock.last_seen_at, lock=lock))
    for lock in locks.filter(battery_level__lt=LOW_BATTERY_LEVEL):
        items.append(AttentionItem(kind="lock_low_battery", title=f"{lock.name} battery low",
                                   detail=f"{lock.battery_level:.0%}", since=None, lock=lock))
    accounts = ProviderAccount.objects.for_tenant(tenant).filter(status=AccountStatus.AUTH_FAILED)
    if properties is not None:
        accounts = accounts.filter(locks__property_id__in=property_ids).distinct()
    for account in accounts:
        items.append(AttentionItem(kind="account_auth_failed", title=f"{account.name}: credentials rejected",
                                   detail=account.status_detail, since=account.last_checked_at, account=account))
    return items


@dataclass
class LockHealth:
    online: bool
    battery_level: float | None
    last_seen_at: datetime | None
    last_reconciled_at: datetime | None
    in_flight: LockCommand | None
    queued: int
    open_issues: list[LockIssue] = field(default_factory=list)
    codes_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.online and not self.open_issues


def lock_health(*, lock: Lock) -> LockHealth:
    commands = LockCommand.objects.filter(lock=lock)
    return LockHealth(
        online=lock.online,
        battery_level=lock.battery_level,
        last_seen_at=lock.last_seen_at,
        last_reconciled_at=lock.last_reconciled_at,
        in_flight=commands.filter(state=CommandState.SENT).select_related("access_code").first(),
        queued=commands.filter(state=CommandState.QUEUED).count(),
        open_issues=list(LockIssue.objects.filter(lock=lock, status=IssueStatus.OPEN).select_related("access_code")),
        codes_by_status=code_counts(codes=AccessCode.objects.filter(lock=lock)),
    )


def code_counts(*, codes: Any) -> dict[str, int]:
    """{status: count} for a queryset of codes, every status present (zeros included)."""
    counts = dict(codes.order_by().values_list("status").annotate(n=Count("id")))
    return {status: counts.get(status, 0) for status in CodeStatus.values}


def open_issues(*, tenant: Tenant, kind: str | None = None) -> Any:
    qs = LockIssue.objects.for_tenant(tenant).filter(status=IssueStatus.OPEN).select_related("lock", "access_code")
    return qs.filter(kind=kind) if kind else qs

