"""The fleet: provider accounts' status and locks' device facts (DESIGN §3, §4 `auth_failed`).

The single writer of an account's status (test connection, the health poll and a rejected command all go
through `account_record_status`, which opens or resolves `auth_failed` on every lock of the account) and
of a lock's online/battery facts (`lock_observe_device`, which opens or resolves `device_offline` and
`low_battery`), and device import, which uses the same writer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction

from locks.activity import activity_record
from locks.conf import engine
from locks.issues import issue_open, issues_resolve
from locks.models import IssueKind, Lock
from providers.base import DeviceInfo, ProviderError, Reason
from providers.http import error_words
from providers.models import AccountStatus, ProviderAccount
from providers.registry import get_provider

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from portal.models import Property


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    status: str
    detail: str


@dataclass(frozen=True)
class ImportResult:
    created: list[Lock]
    updated: list[Lock]



def account_record_status(*, account: ProviderAccount, status: str, detail: str, now: datetime) -> None:
    """What the vendor last said about the account's credentials, and its consequences on every lock."""
    ProviderAccount.objects.filter(pk=account.pk).update(status=status, status_detail=detail[:1000],
                                                         last_checked_at=now)
    account.status, account.status_detail, account.last_checked_at = status, detail[:1000], now
    locks = Lock.objects.filter(provider_account=account)
    if status == AccountStatus.AUTH_FAILED:
        for lock in locks:
            issue_open(lock=lock, code=None, kind=IssueKind.AUTH_FAILED, now=now,
                       detail=detail or f"{account.name}: the vendor rejected the credentials")
    elif status == AccountStatus.OK:
        for lock in locks:
            issues_resolve(lock=lock, code=None, kinds=[IssueKind.AUTH_FAILED], now=now, why="credentials work")


def account_flag_auth_failed(*, account: ProviderAccount, detail: str, now: datetime) -> None:
    """The vendor rejected the credentials: flag the account and show why on every one of its locks."""
    account_record_status(account=account, status=AccountStatus.AUTH_FAILED, detail=detail, now=now)


def account_flag_disconnected(*, account: ProviderAccount, detail: str, now: datetime) -> None:
    """The vendor login behind the account's devices (e.g. Seam's connected account) was disconnected:
    a person reconnects it. The locks are not broken, so this reads "reconnect the account" on every
    lock (`auth_failed`), never "lock offline"."""
    account_flag_auth_failed(
        account=account, now=now,
        detail=f"{account.name}: {detail or 'the vendor account was disconnected'}. Reconnect the account at "
        "the vendor, then press Test connection.",
    )


def _status_of(error: ProviderError, account: ProviderAccount) -> tuple[str, str]:
    """Our words for what went wrong (shown to admins); the vendor's own (redacted) words go to the log."""
    status = AccountStatus.AUTH_FAILED if error.reason == Reason.AUTH_FAILED else AccountStatus.ERROR
    logger.warning("Account %s: %s", account.pk, error.vendor_detail or error.reason)
    return status, error_words(error)


@transaction.atomic
def account_check_connection(
    *, account: ProviderAccount, actor: AbstractBaseUser | AnonymousUser | None, now: datetime
) -> ConnectionResult:
    """"Test connection": ask the vendor whether the credentials work; record the answer like the health
    task does (rejected credentials flag every lock of the account; working ones resolve that)."""
    try:
        get_provider(account).check_connection()
    except ProviderError as exc:
        status, detail = _status_of(exc, account)
    except (LookupError, ImportError):
        status, detail = AccountStatus.ERROR, "No adapter for this vendor is installed."
    else:
        status, detail = AccountStatus.OK, ""
    account_record_status(account=account, status=status, detail=detail, now=now)
    activity_record(
        tenant_id=account.tenant_id, actor=actor, verb="provider_account.checked", now=now,
        message=f"Connection test of “{account.name}”: {account.get_status_display()}",
        data={"account_id": account.pk, "status": status},
    )
    return ConnectionResult(ok=status == AccountStatus.OK, status=status, detail=detail)


def account_check_health(*, account: ProviderAccount, now: datetime) -> None:
    """Poll the vendor's device list: online/battery per lock, and whether the credentials still work."""
    try:
        devices = get_provider(account).list_devices()
    except ProviderError as exc:
        if exc.reason == Reason.AUTH_FAILED:
            with transaction.atomic():
                account_record_status(account=account, status=AccountStatus.AUTH_FAILED, detail=_status_of(exc, account)[1],
                                      now=now)
        return
    with transaction.atomic():
        if any(device.account_disconnected for device in devices):
            account_flag_disconnected(account=account, detail="the vendor reports the account disconnected",
                                      now=now)
        else:
            account_record_status(account=account, status=AccountStatus.OK, detail="", now=now)
        by_device = {device.vendor_device_id: device for device in devices}
        for lock in Lock.objects.filter(provider_account=account):
            device = by_device.get(lock.vendor_device_id)
            if device is not None:
                # Offline because its account is disconnected says nothing about the lock itself.
                online = None if device.account_disconnected else device.online
                lock_observe_device(lock=lock, now=now, online=online, battery_level=device.battery_level)


def lock_observe_device(
    *, lock: Lock, now: datetime, online: bool | None = None, battery_level: float | None = None
) -> None:
    """A device report (webhook, health poll, import): keep online/battery and their issues in step."""
    fields: dict[str, Any] = {}
    if online is not None:
        fields["online"] = online
        if online:
            fields["last_seen_at"] = now
    if battery_level is not None:
        fields["battery_level"] = battery_level
    if not fields:
        return
    Lock.objects.filter(pk=lock.pk).update(**fields)
    was_online = lock.online
    for name, value in fields.items():
        setattr(lock, name, value)
    if online is False:
        issue_open(lock=lock, code=None, kind=IssueKind.DEVICE_OFFLINE, now=now,
                   detail="The vendor reports the lock offline.")
        if was_online:
            activity_record(tenant_id=lock.tenant_id, verb="lock.offline", message=f"{lock.name} went offline",
                            now=now, lock_id=lock.pk)
    elif online and issues_resolve(lock=lock, code=None, kinds=[IssueKind.DEVICE_OFFLINE], now=now,
                                   why="lock online"):
        activity_record(tenant_id=lock.tenant_id, verb="lock.online", message=f"{lock.name} is back online",
                        now=now, lock_id=lock.pk)
    if battery_level is not None:
        if battery_level < engine().LOW_BATTERY_LEVEL:
            issue_open(lock=lock, code=None, kind=IssueKind.LOW_BATTERY, now=now,
                       detail=f"Battery at {battery_level:.0%}.", data={"battery_level": battery_level})
        else:
            issues_resolve(lock=lock, code=None, kinds=[IssueKind.LOW_BATTERY], now=now, why="battery ok")


def _lock_facts(device: DeviceInfo) -> dict[str, Any]:
    """What a device import may overwrite: the vendor's description of the lock, not its health."""
    return {
        "model": device.model,
        "requirements": device.requirements,
        "native_scheduling": device.native_scheduling,
        "pin_readable": device.pin_readable,
    }


@transaction.atomic
def account_import_devices(
    *, account: ProviderAccount, actor: AbstractBaseUser | AnonymousUser | None, now: datetime,
    property: Property | None = None,
) -> ImportResult:
    """Create a Lock for each vendor device not yet known and refresh known ones. New locks land
    unassigned (or in `property` when given): staff place them on the unassigned devices list.

    Known locks keep their property: moving a lock that holds guest codes is a decision, not an import. A
    lock staff stopped managing comes back, unassigned. Raises ProviderError when the vendor cannot be asked.
    """
    if property is not None and property.tenant_id != account.tenant_id:
        raise ValidationError({"property": "Unknown property."})
    devices = get_provider(account).list_devices()
    known = {lock.vendor_device_id: lock for lock in Lock.objects.filter(provider_account=account)}
    created: list[Lock] = []
    updated: list[Lock] = []
    for device in devices:
        facts = _lock_facts(device)
        lock = known.get(device.vendor_device_id)
        if lock is None:
            lock = Lock.objects.create(
                tenant_id=account.tenant_id, property=property, provider_account=account,
                vendor_device_id=device.vendor_device_id, name=(device.name or device.vendor_device_id)[:120],
                last_seen_at=now, **facts,
            )
            created.append(lock)
        else:
            for name, value in facts.items():
                setattr(lock, name, value)
            lock.last_seen_at = now
            lock.managed = True
            lock.save(update_fields=[*facts, "last_seen_at", "managed"])
            updated.append(lock)
        # Online and battery go through the one writer of device facts, with their issues.
        lock_observe_device(lock=lock, now=now, online=device.online, battery_level=device.battery_level)
    activity_record(
        tenant_id=account.tenant_id, actor=actor, verb="provider_account.devices_imported", now=now,
        message=f"{actor} imported devices from “{account.name}”: {len(created)} new, {len(updated)} refreshed",
        data={"account_id": account.pk, "property_id": property.pk if property else None,
              "created": [lk.pk for lk in created], "updated": [lk.pk for lk in updated]},
    )
    return ImportResult(created=created, updated=updated)
