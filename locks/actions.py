"""Staff one-click actions (DESIGN §4 playbook, §7): the top of the engine; pages and the API call these.

Each action is atomic and changes the desired state or queues work; none calls a vendor from the web
request. Lock-wide work (check the lock now, reload, delete all and reprogram, remove a foreign code)
is a command on the lock's queue, sent by the dispatcher under one-command-in-flight; the page answers
at once and shows the work's progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction

from locks.activity import activity_record
from locks.codes import code_new_pin, code_reveal_pin, lock_chooses_pin
from locks.commands import code_send_new_pin, command_queue_lock_wide, enqueue_dispatch
from locks.issues import issue_dismiss, issue_resolve
from locks.models import (
    AccessCode,
    CodePurpose,
    CodeStatus,
    CodeType,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    Lock,
    LockCommand,
    LockIssue,
    Verification,
)
from locks.planning import code_program, code_remove, code_resend
from locks.reconcile import lock_queue_read
from locks.sweep import command_poll
from locks.transitions import TransitionError
from portal.encryption import decrypt_str

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor = AbstractBaseUser | AnonymousUser | None

__all__ = [
    "TransitionError",
    "code_regenerate_pin",
    "code_retry_now",
    "code_reveal_pin",
    "issue_adopt_code",
    "issue_dismiss",
    "issue_remove_unmanaged_code",
    "lock_check_now",
    "lock_delete_all_and_reprogram",
    "lock_reload_codes",
]


def _lock_code(code: AccessCode) -> AccessCode:
    return AccessCode.objects.select_for_update().select_related("lock", "tenant").get(pk=code.pk)


def code_retry_now(*, code: AccessCode, actor: Actor, now: datetime) -> None:
    """Act on a stuck code now: ask the vendor about its command in flight, skip its backoff, or put a
    failed code back in the queue."""
    in_flight = (
        LockCommand.objects.select_related("lock__provider_account", "access_code__lock")
        .filter(access_code=code, state=CommandState.SENT).first()
    )
    if in_flight is None:
        _code_retry_queued(code=code, actor=actor, now=now)
        return
    activity_record(tenant_id=code.tenant_id, verb="code.retry_now",
                    message=f"Asked the vendor about {code.name!r} now", now=now, code=code, actor=actor)
    command_poll(command=in_flight, now=now)


@transaction.atomic
def _code_retry_queued(*, code: AccessCode, actor: Actor, now: datetime) -> None:
    code = _lock_code(code)
    queued = code.commands.filter(state=CommandState.QUEUED)
    if queued.exists():
        queued.update(not_before=None)
    elif code.status == CodeStatus.FAILED:
        if code.ends_at is not None and code.ends_at <= now:
            code_remove(code=code, now=now, actor=actor, note="window ended")
        else:
            code_resend(code=code, now=now, actor=actor, note="retry requested")
    elif code.status == CodeStatus.UNSET and not code.is_scheduled_on_device:
        code_program(code=code, now=now, actor=actor)
    else:
        raise TransitionError(f"A {code.status} code has nothing to retry.")
    activity_record(tenant_id=code.tenant_id, verb="code.retry_now", message=f"Retry requested for {code.name!r}",
                    now=now, code=code, actor=actor)
    enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_regenerate_pin(*, code: AccessCode, actor: Actor, now: datetime, pin: str | None = None) -> AccessCode:
    """A new PIN for the code (generated, or `pin` when a person chose one) and for the codes sharing its
    PIN on the booking's other doors; each pushed to its lock if it is there, or queued again if it had
    failed."""
    code = _lock_code(code)
    if code.status in (CodeStatus.REMOVING, CodeStatus.REMOVED):
        raise TransitionError("A code being removed cannot get a new PIN.")
    if lock_chooses_pin(code.lock):
        raise TransitionError("This lock chooses its own PINs.")
    changed = code_new_pin(code, now=now, pin=pin)
    activity_record(tenant_id=code.tenant_id, verb="code.new_pin", message=f"New PIN requested for {code.name!r}",
                    now=now, code=code, actor=actor)
    for member in changed:
        code_send_new_pin(member, now=now, actor=actor)
    return code


@transaction.atomic
def lock_check_now(*, lock: Lock, actor: Actor, now: datetime) -> LockCommand:
    """"Check the lock": read its codes (through its queue) and repair any difference."""
    return lock_queue_read(lock=lock, now=now, actor=actor)


@transaction.atomic
def lock_reload_codes(*, lock: Lock, actor: Actor, now: datetime) -> LockCommand:
    """Ask the lock to report its codes afresh (or read them, where it cannot be asked)."""
    return command_queue_lock_wide(lock, CommandAction.RELOAD_CODES, now=now, actor=actor)


@transaction.atomic
def lock_delete_all_and_reprogram(*, lock: Lock, actor: Actor, now: datetime) -> LockCommand:
    """The split-brain fix: once the command in flight (if any) has ended, read the lock, delete every code
    on it one at a time, then program every live code again — all through the lock's queue."""
    return command_queue_lock_wide(lock, CommandAction.DELETE_ALL, now=now, actor=actor)


def issue_adopt_code(*, issue: LockIssue, actor: Actor, now: datetime) -> list[AccessCode]:
    """Take the unmanaged code(s) of an issue under management as ongoing staff codes."""
    if issue.kind != IssueKind.UNMANAGED_CODE or issue.status != IssueStatus.OPEN:
        raise TransitionError("Only an open unmanaged-code issue can be adopted.")
    adopted = []
    with transaction.atomic():
        for item in issue.data.get("codes", []):
            pin = decrypt_str(item["pin_token"]) if item.get("pin_token") else ""
            code = AccessCode.objects.create(
                tenant_id=issue.tenant_id, lock_id=issue.lock_id, purpose=CodePurpose.STAFF,
                code_type=CodeType.ONGOING, name=(item.get("name") or "Adopted code")[:64],
                pin=pin, status=CodeStatus.SET, vendor_code_ref=item["vendor_code_ref"],
                verification=Verification.READ_BACK if pin else Verification.VENDOR_ACK,
                guest_notified=True,
            )
            adopted.append(code)
            activity_record(tenant_id=issue.tenant_id, verb="code.adopted",
                            message=f"Code {code.name!r} adopted from the lock", now=now, code=code, actor=actor)
        issue_resolve(issue=issue, now=now, why="adopted")
    return adopted


@transaction.atomic
def issue_remove_unmanaged_code(*, issue: LockIssue, actor: Actor, now: datetime) -> list[LockCommand]:
    """Delete the unmanaged code(s) of an issue from the lock, one queued removal each. The issue resolves
    when a read of the lock no longer finds them."""
    if issue.kind != IssueKind.UNMANAGED_CODE or issue.status != IssueStatus.OPEN:
        raise TransitionError("Only an open unmanaged-code issue can have its codes removed.")
    refs = [item["vendor_code_ref"] for item in issue.data.get("codes", [])]
    commands = [command_queue_lock_wide(issue.lock, CommandAction.REMOVE_CODE, now=now, target_ref=ref, actor=actor)
                for ref in refs]
    # Read the lock once the removals are through: that read resolves the issue (or says what is left).
    commands.append(lock_queue_read(lock=issue.lock, now=now, actor=actor))
    activity_record(tenant_id=issue.tenant_id, verb="lock.unmanaged_remove_queued",
                    message=f"Removal of {len(refs)} unmanaged code(s) queued", now=now, lock_id=issue.lock_id,
                    actor=actor, data={"refs": refs})
    return commands
