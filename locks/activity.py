"""The one writer of the audit log (DESIGN §3 Activity): every transition, match and user action."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User

from locks.models import Activity

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from locks.models import AccessCode, LockCommand


def activity_record(
    *,
    tenant_id: int,
    verb: str,
    message: str,
    now: datetime,
    lock_id: int | None = None,
    code: AccessCode | None = None,
    command: LockCommand | None = None,
    booking_id: int | None = None,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    data: dict[str, Any] | None = None,
) -> Activity:
    if code is not None:
        lock_id = lock_id or code.lock_id
        booking_id = booking_id or code.booking_id
    if command is not None:
        lock_id = lock_id or command.lock_id
    return Activity.objects.create(
        tenant_id=tenant_id,
        lock_id=lock_id,
        access_code=code,
        command=command,
        booking_id=booking_id,
        # A signed-in user (the AUTH_USER_MODEL, auth.User) is named; anonymous or none is not.
        actor=actor if isinstance(actor, User) else None,
        verb=verb,
        message=message[:500],
        data=data or {},
        created_at=now,
    )
