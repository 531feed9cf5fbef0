"""Compare-and-swap primitives for codes and commands (DESIGN §4), and nothing else.

A transition is `filter(pk=…, status=old).update(...)` plus a check of the row count: two workers, a late
webhook and the sweeper can race without corrupting a row, because the loser sees 0 and does nothing.
Each successful swap writes its Activity row here, so no caller repeats update-then-record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from locks.activity import activity_record
from locks.models import AccessCode, LockCommand

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class TransitionError(Exception):
    """A user asked for a transition the current state does not allow."""


def code_move(
    code: AccessCode,
    *,
    old: Iterable[str],
    new: str,
    now: datetime,
    command: LockCommand | None = None,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    note: str = "",
    **fields: Any,
) -> bool:
    """Move `code` from one of `old` to `new`; False (and nothing written) if someone got there first."""
    updated = AccessCode.objects.filter(pk=code.pk, status__in=tuple(old)).update(
        status=new, updated_at=now, **fields
    )
    if not updated:
        return False
    previous = code.status
    code.status = new
    for name, value in fields.items():
        setattr(code, name, value)
    message = f"Code {code.name!r} on {code.lock.name}: {previous} → {new}"
    activity_record(
        tenant_id=code.tenant_id,
        verb="code.status",
        message=f"{message} ({note})" if note else message,
        now=now,
        code=code,
        command=command,
        actor=actor,
        data={"from": previous, "to": new, **({"note": note} if note else {})},
    )
    return True


def command_move(
    command: LockCommand,
    *,
    old: str,
    new: str,
    now: datetime,
    verb: str,
    message: str,
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """The twin of `code_move` for commands: `old` → `new` or nothing (someone else settled it)."""
    if not LockCommand.objects.filter(pk=command.pk, state=old).update(state=new, **fields):
        return False
    command.state = new
    for name, value in fields.items():
        setattr(command, name, value)
    activity_record(
        tenant_id=command.tenant_id,
        verb=verb,
        message=message,
        now=now,
        code=command.access_code,
        command=command,
        data=data,
    )
    return True
