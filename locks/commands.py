"""A lock's command queue (DESIGN §4 "Commands, one at a time per lock", retries): queue with coalescing,
claim, acknowledge, complete, fail, time out — and what each outcome does to the command's code.

`command_complete` and `command_fail` are the one completion path for the synchronous answer, webhooks,
the sweeper's poll and read-backs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from locks import pins
from locks.activity import activity_record
from locks.codes import code_fail, code_gone, code_new_pin, code_settle, lock_chooses_pin, pin_siblings, said
from locks.conf import engine
from locks.fleet import account_flag_auth_failed
from locks.issues import issue_open
from locks.lead import WRITES, lock_lead_refresh
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    Lock,
    LockCommand,
    LockIssue,
    Verification,
)
from locks.transitions import code_move, command_move
from locks.troubleshooting import issue_kind_for_reason
from portal.encryption import fingerprint
from providers.base import Outcome, Progress, Reason, is_transient

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# Lock-wide work: no access code; the dispatcher runs it under the same one-in-flight rule.
LOCK_WIDE_ACTIONS = (CommandAction.READ_CODES, CommandAction.RELOAD_CODES, CommandAction.DELETE_ALL,
                     CommandAction.REMOVE_CODE)


def enqueue_dispatch(lock_id: int) -> None:
    """After commit, so the worker sees the queued command."""

    def enqueue() -> None:
        from django_q.tasks import async_task

        async_task("locks.tasks.dispatch_lock", lock_id)

    transaction.on_commit(enqueue)


def command_queue(
    code: AccessCode,
    action: str,
    *,
    now: datetime,
    attempt: int = 1,
    not_before: datetime | None = None,
    actor: AbstractBaseUser | AnonymousUser | None = None,
) -> LockCommand:
    """Queue `action` for `code`, coalescing with its unsent commands (the latest desired state wins:
    commands read the code when they are sent, so a queued create or update already carries it)."""
    queued = list(code.commands.filter(state=CommandState.QUEUED))
    if action in (CommandAction.CREATE, CommandAction.UPDATE):
        for existing in queued:
            if existing.action == CommandAction.CREATE or existing.action == action:
                # The merged command waits for the LATER of the two times and keeps the higher attempt. A
                # backoff (busy/423, rate limited) is the vendor's word, not the old desired state's: a new
                # edit that cleared it went straight back into Nuki's 423 while the operation still ran and
                # spent a retry attempt per edit, so enough edits during one operation failed the code.
                if not_before is not None and (existing.not_before is None or existing.not_before < not_before):
                    existing.not_before = not_before
                existing.attempt = max(existing.attempt, attempt)
                LockCommand.objects.filter(pk=existing.pk).update(
                    not_before=existing.not_before, attempt=existing.attempt
                )
                return existing
    for existing in queued:
        LockCommand.objects.filter(pk=existing.pk, state=CommandState.QUEUED).update(
            state=CommandState.SUPERSEDED, finished_at=now
        )
    command = LockCommand.objects.create(
        tenant_id=code.tenant_id, lock_id=code.lock_id, access_code=code, action=action, attempt=attempt,
        not_before=not_before,
    )
    activity_record(
        tenant_id=code.tenant_id, verb="command.queued",
        message=f"{action.capitalize()} queued for {code.name!r} (attempt {attempt})", now=now, code=code,
        command=command, actor=actor,
        data={"action": action, "attempt": attempt, "not_before": not_before.isoformat() if not_before else None},
    )
    return command


def command_queue_lock_wide(
    lock: Lock,
    action: str,
    *,
    now: datetime,
    target_ref: str = "",
    actor: AbstractBaseUser | AnonymousUser | None = None,
) -> LockCommand:
    """Queue lock-wide work (read, reload, delete all, remove one foreign code). The same work already
    waiting at the end of the queue is that work: asking twice queues it once."""
    last = LockCommand.objects.filter(lock=lock, state=CommandState.QUEUED).order_by("-id").first()
    if last is not None and last.access_code_id is None and last.action == action and last.target_ref == target_ref:
        return last
    command = LockCommand.objects.create(tenant_id=lock.tenant_id, lock=lock, action=action, target_ref=target_ref)
    label = CommandAction(action).label + (f" ({target_ref})" if target_ref else "")
    activity_record(tenant_id=lock.tenant_id, verb="command.queued", message=f"{label} queued on {lock.name}",
                    now=now, lock_id=lock.pk, command=command, actor=actor,
                    data={"action": action, "target_ref": target_ref})
    enqueue_dispatch(lock.pk)
    return command


def commands_cancel_queued(*, lock: Lock | None = None, code: AccessCode | None = None, now: datetime,
                           actions: tuple[str, ...] | None = None) -> int:
    """Cancel the unsent commands of a lock or of a code (they will not be needed)."""
    qs = LockCommand.objects.filter(state=CommandState.QUEUED)
    qs = qs.filter(lock=lock) if lock is not None else qs.filter(access_code=code)
    if actions is not None:
        qs = qs.filter(action__in=actions)
    return qs.update(state=CommandState.CANCELLED, finished_at=now)


def command_sending(command: LockCommand) -> dict[str, Any]:
    """What `command` is about to send (its claim record): the slot or vendor code ref if known, the name,
    the PIN's fingerprint and the window, read from its code now."""
    code = command.access_code if command.access_code_id is not None else None
    if code is None:
        return {"sent_code_ref": command.target_ref}
    return {"sent_code_ref": code.vendor_code_ref, "sent_name": code.name,
            "sent_pin_fingerprint": code.pin_fingerprint, "sent_starts_at": code.starts_at,
            "sent_ends_at": code.ends_at}


def command_claim(*, command: LockCommand, now: datetime) -> bool:
    """queued → sent, recording what it is about to send: from here until the vendor's answer is written,
    that record is all correlation has to tell this command's news from another code's. False when
    another dispatcher got it or already has one in flight on the lock."""
    try:
        with transaction.atomic():
            return command_move(
                command, old=CommandState.QUEUED, new=CommandState.SENT, now=now, verb="command.sent",
                message=f"{command.get_action_display()} sent to the vendor (attempt {command.attempt})",
                data={"action": command.action, "attempt": command.attempt}, sent_at=now, held_by="",
                next_poll_at=now + timedelta(minutes=engine().SWEEP_STALE_MINUTES), **command_sending(command),
            )
    except IntegrityError:
        return False  # command_one_in_flight_per_lock: someone else is sending on this lock


def command_hold(*, command: LockCommand, until: datetime, why: str, now: datetime) -> bool:
    """A queued command waits for a vendor rate limit (`why`) until `until`, instead of being sent and
    refused (locks/ratelimits.py). False when it is no longer queued."""
    if not LockCommand.objects.filter(pk=command.pk, state=CommandState.QUEUED).update(not_before=until,
                                                                                       held_by=why):
        return False
    command.not_before, command.held_by = until, why
    activity_record(
        tenant_id=command.tenant_id, verb="command.held",
        message=f"{command.get_action_display()} waits for {why}", now=now, code=command.access_code,
        command=command, lock_id=command.lock_id, data={"until": until.isoformat(), "limit": why},
    )
    return True


def command_record_sending(*, command: LockCommand) -> None:
    """Re-record a claimed command's claim record if its code changed between the claim and the send (an
    edit in that instant): the record must say what actually went out."""
    facts = command_sending(command)
    if any(getattr(command, name) != value for name, value in facts.items()):
        LockCommand.objects.filter(pk=command.pk, state=CommandState.SENT).update(**facts)
        for name, value in facts.items():
            setattr(command, name, value)


# Endings that do not say the vendor refused: it may have carried the command out before the answer was
# lost (a worker killed after the vendor accepted, a read timeout, a 5xx or an adapter crash after a 2xx).
UNANSWERED_ENDINGS = Q(state=CommandState.TIMED_OUT) | Q(state=CommandState.FAILED, reason=Reason.VENDOR_ERROR)


def command_unanswered_creates(command: LockCommand) -> list[LockCommand]:
    """The earlier sends of this create, newest first, when one of them went out, has no vendor reference
    recorded and ended unanswered, and nothing of the code succeeded since: before sending it again the
    lock must be asked whether that one landed (DESIGN §4 "The sweeper"). Empty otherwise."""
    if command.action != CommandAction.CREATE or command.access_code_id is None:
        return []
    earlier = LockCommand.objects.filter(access_code_id=command.access_code_id, pk__lt=command.pk)
    last_success = earlier.filter(state=CommandState.SUCCEEDED).order_by("-id").values_list("pk", flat=True).first()
    sends = earlier.filter(action=CommandAction.CREATE, sent_at__isnull=False, pk__gt=last_success or 0)
    if not sends.filter(UNANSWERED_ENDINGS, vendor_ref="").exists():
        return []
    return list(sends.order_by("-id"))


@transaction.atomic
def command_acknowledge(
    *, command: LockCommand, vendor_ref: str, vendor_code_ref: str, pin: str, summary: dict[str, Any], now: datetime
) -> None:
    """The vendor accepted a sent command: keep its references (and its PIN, where the lock chose one)."""
    answer: dict[str, Any] = {"vendor_ref": vendor_ref, "request_summary": summary}
    if vendor_code_ref and not command.sent_code_ref:
        answer["sent_code_ref"] = vendor_code_ref  # the slot the vendor chose is what this command set
    if pin:
        answer["sent_pin_fingerprint"] = fingerprint(pin)  # the lock chose the PIN it holds
    LockCommand.objects.filter(pk=command.pk).update(**answer)
    for name, value in answer.items():
        setattr(command, name, value)
    code = command.access_code
    # An answer that arrives after its command ended (timed out, superseded) is recorded on the command
    # only: the code may have moved on since (a retry landed, a read confirmed another slot), and a late
    # word must not rewrite what the code knows — it only fills in what the code does not know yet.
    late = not LockCommand.objects.filter(pk=command.pk, state=CommandState.SENT).exists()
    if code is not None:
        if late:
            code = AccessCode.objects.select_related("lock", "tenant").get(pk=code.pk)
        fields: list[str] = []
        if vendor_code_ref and code.vendor_code_ref != vendor_code_ref and not (late and code.vendor_code_ref):
            code.vendor_code_ref = vendor_code_ref
            fields.append("vendor_code_ref")
        if pin and code.pin != pin and not (late and code.pin):
            code.pin = pin
            fields.append("pin")
        if fields:
            code.save(update_fields=[*fields, "updated_at"])
    activity_record(
        tenant_id=command.tenant_id, verb="command.accepted",
        message=f"Vendor accepted the {command.get_action_display().lower()}" + (f" (ref {vendor_ref})" if vendor_ref else ""),
        now=now, code=code, command=command, data={"vendor_ref": vendor_ref, "vendor_code_ref": vendor_code_ref},
    )


def command_complete(*, command: LockCommand, outcome: Outcome, now: datetime, source: str) -> bool:
    """The one completion path for responses, webhooks, sweeper polls and read-backs.

    Returns True when this call completed the command; False for a pending outcome or a command that
    is no longer in flight (a late or repeated report, which is harmless).
    """
    if outcome.progress == Progress.PENDING:
        return False
    if outcome.progress == Progress.FAILED:
        return command_fail(
            command=command, reason=outcome.reason or Reason.VENDOR_ERROR, detail=outcome.detail,
            clash_code_ref=outcome.clash_code_ref, now=now, source=source,
        )
    with transaction.atomic():
        if not command_move(
            command, old=CommandState.SENT, new=CommandState.SUCCEEDED, now=now, verb="command.succeeded",
            message=f"{command.get_action_display()} confirmed ({source})", data={"source": source},
            finished_at=now, reason="", vendor_detail=outcome.detail[:2000],
        ):
            return False
        if command.access_code_id is not None:
            code = AccessCode.objects.select_related("lock", "tenant").get(pk=command.access_code_id)
            _code_confirmed(code, command=command, outcome=outcome, now=now, source=source)
        _learn_lead(command, now=now)
        if source != "response":  # the dispatcher loop sends the next one itself
            enqueue_dispatch(command.lock_id)
    return True


def _code_confirmed(
    code: AccessCode, *, command: LockCommand, outcome: Outcome, now: datetime, source: str
) -> None:
    if command.action == CommandAction.DELETE:
        code_gone(code, command=command, now=now)
        return
    vendor_code_ref = outcome.vendor_code_ref or code.vendor_code_ref
    more_to_send = code.commands.filter(
        state=CommandState.QUEUED, action__in=[CommandAction.CREATE, CommandAction.UPDATE]
    ).exists()
    if code.status != CodeStatus.SETTING or more_to_send:
        # A delete (or a newer update) is queued behind this one: remember the slot so it can find it;
        # the code settles when the last of them is confirmed.
        if vendor_code_ref != code.vendor_code_ref:
            AccessCode.objects.filter(pk=code.pk).update(vendor_code_ref=vendor_code_ref)
        return
    verification = Verification.READ_BACK if source == "reconcile" else Verification.VENDOR_ACK
    code_settle(code, command=command, vendor_code_ref=vendor_code_ref, verification=verification, now=now,
                note=source)


def command_fail(
    *,
    command: LockCommand,
    reason: str,
    now: datetime,
    detail: str = "",
    retry_after: float | None = None,
    clash_code_ref: str = "",
    source: str = "response",
    from_vendor: bool = True,
) -> bool:
    """sent → failed / timed_out, then what the retry table says (DESIGN §4). `from_vendor` is False when
    `detail` is Lockstep's own words (caught before sending, no answer in time), not the vendor's."""
    reason = str(reason)
    state = CommandState.TIMED_OUT if reason == Reason.TIMEOUT else CommandState.FAILED
    with transaction.atomic():
        if not command_move(
            command, old=CommandState.SENT, new=state, now=now, verb=f"command.{state}",
            message=f"{command.get_action_display()} {state.replace('_', ' ')}: {reason}"
            + (f" — {detail[:200]}" if detail else ""),
            data={"reason": reason, "source": source, "clash_code_ref": clash_code_ref},
            finished_at=now, reason=reason, vendor_detail=detail[:2000],
        ):
            return False
        lock = Lock.objects.select_related("provider_account").get(pk=command.lock_id)
        code = (
            AccessCode.objects.select_related("lock", "tenant").get(pk=command.access_code_id)
            if command.access_code_id
            else None
        )
        if reason == Reason.AUTH_FAILED:
            account_flag_auth_failed(account=lock.provider_account, detail=detail, now=now)
        if code is None:
            issue_open(lock=lock, code=None, command=command, kind=issue_kind_for_reason(reason), now=now,
                       detail=detail, **said(detail, from_vendor=from_vendor))
        elif code.status == CodeStatus.REMOVING and command.action != CommandAction.DELETE:
            # The code is on its way out: no retry, no new PIN; the queued delete is what matters now.
            AccessCode.objects.filter(pk=code.pk).update(last_reason=reason)
        elif reason == Reason.DUPLICATE_PIN:
            _after_duplicate_pin(code, command=command, clash_code_ref=clash_code_ref, detail=detail, now=now)
        elif command.action == CommandAction.DELETE and reason == Reason.NOT_FOUND_ON_DEVICE:
            # Nothing to delete: the lock does not hold it, which is what we wanted.
            code_gone(code, command=command, now=now, note="not on the lock")
        elif is_transient(reason) and command.attempt <= len(engine().BACKOFF_MINUTES):
            _retry_later(code, command=command, reason=reason, detail=detail, retry_after=retry_after, now=now,
                         from_vendor=from_vendor)
        else:
            code_fail(code, command=command, reason=reason, detail=detail, now=now, from_vendor=from_vendor)
        _learn_lead(command, now=now)
        if source != "response":
            enqueue_dispatch(command.lock_id)
    return True


def _learn_lead(command: LockCommand, *, now: datetime) -> None:
    """A write finished: the lock's record changed, and with it perhaps its lead (DESIGN §4 "Adaptive lead").
    After the code's own move, so a re-timed code is one that still waits for its time."""
    if command.action in WRITES and command.sent_at is not None:
        lock_lead_refresh(lock_id=command.lock_id, now=now)


def command_time_out(*, command: LockCommand, now: datetime, detail: str = "") -> bool:
    return command_fail(
        command=command, reason=Reason.TIMEOUT, now=now, source="sweep",
        detail=detail or "no outcome from the vendor within the hard limit", from_vendor=False,
    )


def _retry_later(
    code: AccessCode, *, command: LockCommand, reason: str, detail: str, retry_after: float | None, now: datetime,
    from_vendor: bool = True,
) -> None:
    delay = timedelta(minutes=engine().BACKOFF_MINUTES[command.attempt - 1])
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    AccessCode.objects.filter(pk=code.pk).update(last_reason=reason)
    ours = f"{command.action} failed ({reason}); retrying automatically"
    words = said(detail, from_vendor=True) if from_vendor and detail else said(detail or ours, from_vendor=False)
    issue_open(lock=code.lock, code=code, command=command, kind=issue_kind_for_reason(reason), now=now,
               detail=detail or ours, **words)
    if code.status in (CodeStatus.SETTING, CodeStatus.REMOVING):
        command_queue(code, command.action, now=now, attempt=command.attempt + 1, not_before=now + delay)


def _after_duplicate_pin(
    code: AccessCode, *, command: LockCommand, clash_code_ref: str, detail: str, now: datetime
) -> None:
    """Never resend a clashing PIN as is: a fresh one if the guest was not told yet, else ask staff."""
    data = {"clash_code_ref": clash_code_ref} if clash_code_ref else {}
    where = f" (already in slot {clash_code_ref})" if clash_code_ref else ""
    # A lock that calls every fresh PIN a duplicate is not clashing, it is broken: after a few new PINs,
    # stop and ask staff instead of regenerating forever.
    clashes_so_far = (
        LockIssue.objects.filter(lock_id=code.lock_id, access_code=code, kind=IssueKind.DUPLICATE_PIN,
                                 status=IssueStatus.OPEN).values_list("occurrences", flat=True).first() or 0
    )
    siblings = pin_siblings(code)
    can_regenerate = (
        not any(member.guest_notified for member in (code, *siblings)) and not lock_chooses_pin(code.lock)
        and command.action != CommandAction.DELETE and clashes_so_far < engine().MAX_DUPLICATE_REGENERATIONS
    )
    if can_regenerate:
        try:
            # The booking's other doors take the new PIN too: a guest has one PIN for every door.
            changed = code_new_pin(code, now=now, exclude=(code.pin,))
        except pins.NoPinAvailable:
            can_regenerate = False
    if can_regenerate:
        issue_open(lock=code.lock, code=code, command=command, kind=IssueKind.DUPLICATE_PIN, now=now,
                   detail=f"The lock already holds this PIN{where}; a new PIN was generated.", data=data,
                   our_inference=f"The lock already holds this PIN{where}; a new PIN was generated"
                   + (" for every door of the booking." if len(changed) > 1 else "."),
                   vendor_said=detail)
        AccessCode.objects.filter(pk=code.pk).update(last_reason=Reason.DUPLICATE_PIN)
        command_queue(code, command.action, now=now, attempt=command.attempt + 1)
        for sibling in changed[1:]:
            code_send_new_pin(sibling, now=now)
        return
    code_move(code, old=[CodeStatus.SETTING, CodeStatus.REMOVING, CodeStatus.SET, CodeStatus.UNSET],
              new=CodeStatus.FAILED, now=now, command=command, note="duplicate_pin",
              last_reason=Reason.DUPLICATE_PIN)
    issue_open(lock=code.lock, code=code, command=command, kind=IssueKind.DUPLICATE_PIN, now=now,
               detail=f"The lock already holds this PIN{where}. The guest has it already, so staff must "
               "choose: remove the other code or give the guest a new PIN. " + detail, data=data,
               our_inference=f"The lock already holds this PIN{where}. The guest has it already, so staff must "
               "choose: remove the other code or give the guest a new PIN.", vendor_said=detail)


def code_send_new_pin(code: AccessCode, *, now: datetime,
                      actor: AbstractBaseUser | AnonymousUser | None = None) -> None:
    """A code's PIN changed: get it to the lock. One on the lock (or preloaded) gets an update; one being
    set gets an update behind the command in flight (a queued create already reads the new PIN); a
    failed one is sent again; one not programmed yet just waits for its time."""
    if code.status == CodeStatus.FAILED:
        if code_move(code, old=[CodeStatus.FAILED], new=CodeStatus.SETTING, now=now, actor=actor, note="new PIN",
                     last_reason=""):
            command_queue(code, CommandAction.UPDATE if code.vendor_code_ref else CommandAction.CREATE, now=now,
                          actor=actor)
            enqueue_dispatch(code.lock_id)
        return
    if code.status == CodeStatus.UNSET and not code.is_scheduled_on_device:
        return
    code_move(code, old=[CodeStatus.SET, CodeStatus.UNSET], new=CodeStatus.SETTING, now=now, actor=actor,
              note="new PIN")
    if code.status == CodeStatus.SETTING:
        command_queue(code, CommandAction.UPDATE, now=now, actor=actor)
        enqueue_dispatch(code.lock_id)
