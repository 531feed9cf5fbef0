"""Reads for pages, alerts and the engine: the attention rule and queue (DESIGN §7 dashboard), counts,
open issues, a lock's work in progress."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, QuerySet

from locks.conf import engine
from locks.models import AccessCode, CodeStatus, CommandState, IssueStatus, Lock, LockCommand, LockIssue

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

    settings = engine()
    codes = AccessCode.objects.for_tenant(tenant).select_related("lock", "booking")
    locks = Lock.objects.for_tenant(tenant).filter(managed=True).select_related("property")
    if properties is not None:
        property_ids = [p.pk for p in properties]
        codes = codes.filter(lock__property_id__in=property_ids)
        locks = locks.filter(property_id__in=property_ids)
    items: list[AttentionItem] = []
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
            detail=(f"starts {code.starts_at:%Y-%m-%d %H:%M} UTC" if code.starts_at else "")
            + (f" — last error: {code.last_reason}" if code.last_reason else ""),
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
