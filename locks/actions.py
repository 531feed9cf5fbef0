"""Staff one-click actions (DESIGN §4 playbook, §7): the top of the engine; pages and the API call these.

Each action is atomic and changes the desired state or queues work; none calls a vendor from the web
request. Lock-wide work (check the lock now, reload, delete all and reprogram, remove a foreign code)
is a command on the lock's queue, sent by the dispatcher under one-command-in-flight; the page answers
at once and shows the work's progress.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from locks.activity import activity_record
from locks.codes import code_record_pin, code_reveal_pin, live_pins, lock_chooses_pin
from locks.commands import command_queue_lock_wide, enqueue_dispatch
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
from locks.pin_change import code_change_pin, code_current
from locks.pins import validate_pin
from locks.planning import code_program, code_remove, code_resend
from locks.reconcile import lock_queue_read
from locks.selectors import codes_with_unknown_pin
from locks.sweep import command_poll
from locks.transitions import TransitionError
from portal.encryption import decrypt_str

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from portal.models import Property

    Actor = AbstractBaseUser | AnonymousUser | None

__all__ = [
    "TransitionError",
    "code_regenerate_pin",
    "code_retry_now",
    "code_reveal_pin",
    "codes_retry_failed",
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
    _queue_fresh_read(code.lock, actor=actor, now=now)


def _queue_fresh_read(lock: Lock, *, actor: Actor, now: datetime) -> None:
    """After a staff action the page's "on the lock" facts are older than the change: read the lock again
    (behind the work just queued, one command at a time), so they are refreshed rather than stale."""
    with transaction.atomic():
        lock_queue_read(lock=lock, now=now, actor=actor)


def codes_retry_failed(
    *, lock: Lock | None = None, property: Property | None = None, actor: Actor, now: datetime
) -> int:
    """"Retry all failed" on a lock or on a property: each failed code takes `code_retry_now`'s path (its
    own transaction and Activity row). Returns how many went back in the queue; a code that moved on
    meanwhile is skipped, not an error."""
    if (lock is None) == (property is None):
        raise ValueError("Give a lock or a property.")
    failed = AccessCode.objects.filter(status=CodeStatus.FAILED).select_related("lock", "booking")
    failed = failed.filter(lock=lock) if lock is not None else failed.filter(lock__property=property)
    retried = 0
    for code in failed.order_by("starts_at", "pk"):
        try:
            code_retry_now(code=code, actor=actor, now=now)
        except TransitionError:
            continue
        retried += 1
    return retried


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
    _queue_fresh_read(code.lock, actor=actor, now=now)
    enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_regenerate_pin(*, code: AccessCode, actor: Actor, now: datetime, pin: str | None = None) -> AccessCode:
    """A new PIN for the code (generated, or `pin` when a person chose one) and for the codes sharing its
    PIN on the booking's other doors. For a guest who knows the old PIN, make before break
    (locks/pin_change.py): the new PIN goes on beside the old, the guest is told, then the old comes off.
    Returns the code that carries the new PIN on this code's door (a new code, when it goes on beside)."""
    code = code_current(_lock_code(code))
    if code.status in (CodeStatus.REMOVING, CodeStatus.REMOVED):
        raise TransitionError("A code being removed cannot get a new PIN.")
    if lock_chooses_pin(code.lock):
        raise TransitionError("This lock chooses its own PINs.")
    changed = code_change_pin(code=code, now=now, actor=actor, pin=pin)
    activity_record(tenant_id=code.tenant_id, verb="code.new_pin", message=f"New PIN requested for {code.name!r}",
                    now=now, code=code, actor=actor)
    if changed[0] is code and (code.status != CodeStatus.UNSET or code.is_scheduled_on_device):
        _queue_fresh_read(code.lock, actor=actor, now=now)  # changed in place: read back what the lock holds
    return changed[0]


@transaction.atomic
def lock_check_now(*, lock: Lock, actor: Actor, now: datetime) -> LockCommand:
    """"Check the lock": read its codes (through its queue) and repair any difference."""
    return lock_queue_read(lock=lock, now=now, actor=actor)


@transaction.atomic
def lock_reload_codes(*, lock: Lock, actor: Actor, now: datetime) -> LockCommand:
    """Ask the lock to report its codes afresh (or read them, where it cannot be asked)."""
    return command_queue_lock_wide(lock, CommandAction.RELOAD_CODES, now=now, actor=actor)


@transaction.atomic
def lock_delete_all_and_reprogram(
    *, lock: Lock, actor: Actor, now: datetime, pins: Mapping[int, str] | None = None, drop: Collection[int] = ()
) -> LockCommand:
    """The split-brain fix: once the command in flight (if any) has ended, read the lock, delete every code
    on it one at a time, then program every live code again — all through the lock's queue.

    A code whose PIN Lockstep does not know would be lost (it cannot be programmed again), so each needs
    its PIN in `pins` (code id → PIN, checked against the lock's rules) or its id in `drop`. Otherwise
    ValidationError (keyed by code id) and nothing changes."""
    unknown = list(codes_with_unknown_pin(lock=lock, now=now).select_related("lock", "tenant"))
    given = {code_id: str(pin).strip() for code_id, pin in (pins or {}).items()}
    errors: dict[str, list[str]] = {}
    chosen: list[str] = []
    for code in unknown:
        if code.pk in drop:
            continue
        pin = given.get(code.pk, "")
        problems = (validate_pin(pin, lock.requirements or {}, taken=live_pins(lock, exclude_code=code) | set(chosen))
                    if pin else [f"Lockstep does not know the PIN of {code.name!r}: enter it, or choose to drop the code."])
        if problems:
            errors[str(code.pk)] = problems
        chosen.append(pin)
    if errors:
        raise ValidationError(errors)
    for code in unknown:
        if code.pk in drop:
            code_remove(code=code, now=now, actor=actor, note="dropped before delete all: PIN unknown")
        else:
            code_record_pin(code, pin=given[code.pk], now=now, actor=actor)
    return command_queue_lock_wide(lock, CommandAction.DELETE_ALL, now=now, actor=actor)


def issue_adopt_code(
    *, issue: LockIssue, actor: Actor, now: datetime, pins: Mapping[str, str] | None = None
) -> list[AccessCode]:
    """Take the unmanaged code(s) of an issue under management as ongoing staff codes. Where the lock could
    not tell the PIN, `pins` (vendor code ref → PIN) carries what staff entered, checked against the
    lock's rules (ValidationError keyed by ref, nothing adopted); a code adopted without a PIN cannot be
    put back if the lock is ever cleared."""
    if issue.kind != IssueKind.UNMANAGED_CODE or issue.status != IssueStatus.OPEN:
        raise TransitionError("Only an open unmanaged-code issue can be adopted.")
    adopted = []
    entered = {ref: str(pin).strip() for ref, pin in (pins or {}).items() if str(pin).strip()}
    with transaction.atomic():
        taken = live_pins(issue.lock)
        for item in issue.data.get("codes", []):
            pin = decrypt_str(item["pin_token"]) if item.get("pin_token") else entered.get(item["vendor_code_ref"], "")
            if pin and not item.get("pin_token"):
                problems = validate_pin(pin, issue.lock.requirements or {}, taken=taken)
                if problems:
                    raise ValidationError({item["vendor_code_ref"]: problems})
            taken.add(pin)
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
        _queue_fresh_read(issue.lock, actor=actor, now=now)
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
