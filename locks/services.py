"""Every state change of codes, commands and issues (DESIGN §4). One function per transition.

Transitions are guarded by compare-and-swap updates (`filter(pk=…, status=old).update(...)` and the row
count) so two workers, a late webhook and the sweeper can race without corrupting a code: the loser sees
a count of 0 and does nothing. Each transition writes an Activity row; anything that must not run
before the data is visible (enqueuing a dispatch) goes through `transaction.on_commit`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from locks.models import (
    AccessCode,
    Activity,
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
from locks.troubleshooting import issue_kind_for_reason
from portal.encryption import decrypt_str
from providers.base import Outcome, Progress, ProviderError, Reason, is_transient

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from portal.models import Booking
    from providers.models import ProviderAccount

class TransitionError(Exception):
    """A user asked for a transition the current state does not allow."""


# Transient reasons are retried after these delays (minutes); one more failure and the code fails.
BACKOFF_MINUTES: tuple[int, ...] = (1, 2, 5, 15, 30, 60)

MAX_DUPLICATE_REGENERATIONS = 3

# Issues about getting a code onto the lock; a confirmed code makes them moot.
RESOLVED_WHEN_SET: tuple[str, ...] = (
    IssueKind.COMMAND_TIMEOUT,
    IssueKind.NACK,
    IssueKind.BUSY,
    IssueKind.RATE_LIMITED,
    IssueKind.VENDOR_ERROR,
    IssueKind.DUPLICATE_PIN,
    IssueKind.INVALID_PIN,
    IssueKind.SCHEDULE_INVALID,
    IssueKind.SLOTS_FULL,
    IssueKind.UNRECOGNIZED_JOB_STATE,
    IssueKind.USER_NOT_FOUND,
)

LOW_BATTERY_LEVEL = 0.2


def engine_setting(name: str) -> int:
    return int(settings.LOCKSTEP[name])


# --------------------------------------------------------------------------- activity


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
    actor: AbstractBaseUser | None = None,
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
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb,
        message=message[:500],
        data=data or {},
        created_at=now,
    )


def _enqueue_dispatch(lock_id: int) -> None:
    """After commit, so the worker sees the queued command."""

    def enqueue() -> None:
        from django_q.tasks import async_task

        async_task("locks.tasks.dispatch_lock", lock_id)

    transaction.on_commit(enqueue)


# --------------------------------------------------------------------------- code status (CAS)


def _code_move(
    code: AccessCode,
    *,
    old: Iterable[str],
    new: str,
    now: datetime,
    command: LockCommand | None = None,
    actor: AbstractBaseUser | None = None,
    note: str = "",
    **fields: Any,
) -> bool:
    """Move `code` from one of `old` to `new`; False (and nothing written) if someone got there first."""
    old = tuple(old)
    updated = AccessCode.objects.filter(pk=code.pk, status__in=old).update(status=new, updated_at=now, **fields)
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


def _status_when_confirmed(code: AccessCode, now: datetime) -> tuple[str, bool]:
    """(status, is_scheduled_on_device) for a code the lock has just confirmed."""
    if code.lock.native_scheduling and code.starts_at is not None and now < code.starts_at:
        return CodeStatus.UNSET, True
    return CodeStatus.SET, False


# --------------------------------------------------------------------------- commands


def _never_sent(code: AccessCode) -> bool:
    return not code.is_scheduled_on_device and not code.vendor_code_ref and not code.commands.filter(
        sent_at__isnull=False
    ).exists()


def _queue(
    code: AccessCode,
    action: str,
    *,
    now: datetime,
    attempt: int = 1,
    not_before: datetime | None = None,
    actor: AbstractBaseUser | None = None,
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
        tenant_id=code.tenant_id,
        lock_id=code.lock_id,
        access_code=code,
        action=action,
        attempt=attempt,
        not_before=not_before,
    )
    activity_record(
        tenant_id=code.tenant_id,
        verb="command.queued",
        message=f"{action.capitalize()} queued for {code.name!r} (attempt {attempt})",
        now=now,
        code=code,
        command=command,
        actor=actor,
        data={"action": action, "attempt": attempt, "not_before": not_before.isoformat() if not_before else None},
    )
    return command


def command_claim(*, command: LockCommand, now: datetime) -> bool:
    """queued → sent. False when another dispatcher got it or already has one in flight on the lock."""
    try:
        with transaction.atomic():
            claimed = LockCommand.objects.filter(pk=command.pk, state=CommandState.QUEUED).update(
                state=CommandState.SENT, sent_at=now
            )
    except IntegrityError:
        return False  # command_one_in_flight_per_lock: someone else is sending on this lock
    if not claimed:
        return False
    command.state, command.sent_at = CommandState.SENT, now
    activity_record(
        tenant_id=command.tenant_id,
        verb="command.sent",
        message=f"{command.action.capitalize()} sent to the vendor (attempt {command.attempt})",
        now=now,
        code=command.access_code,
        command=command,
        data={"action": command.action, "attempt": command.attempt},
    )
    return True


@transaction.atomic
def command_acknowledge(
    *, command: LockCommand, vendor_ref: str, vendor_code_ref: str, pin: str, summary: dict[str, Any], now: datetime
) -> None:
    """The vendor accepted a sent command: keep its references (and its PIN, where the lock chose one)."""
    LockCommand.objects.filter(pk=command.pk).update(vendor_ref=vendor_ref, request_summary=summary)
    command.vendor_ref, command.request_summary = vendor_ref, summary
    code = command.access_code
    if code is None:
        return
    fields: list[str] = []
    if vendor_code_ref and code.vendor_code_ref != vendor_code_ref:
        code.vendor_code_ref = vendor_code_ref
        fields.append("vendor_code_ref")
    if pin and code.pin != pin:
        code.pin = pin
        fields.append("pin")
    if fields:
        code.save(update_fields=[*fields, "updated_at"])
    activity_record(
        tenant_id=command.tenant_id,
        verb="command.accepted",
        message=f"Vendor accepted the {command.action}" + (f" (ref {vendor_ref})" if vendor_ref else ""),
        now=now,
        code=code,
        command=command,
        data={"vendor_ref": vendor_ref, "vendor_code_ref": vendor_code_ref},
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
            command=command,
            reason=outcome.reason or Reason.VENDOR_ERROR,
            detail=outcome.detail,
            clash_code_ref=outcome.clash_code_ref,
            now=now,
            source=source,
        )
    with transaction.atomic():
        done = LockCommand.objects.filter(pk=command.pk, state=CommandState.SENT).update(
            state=CommandState.SUCCEEDED, finished_at=now, reason="", vendor_detail=outcome.detail[:2000]
        )
        if not done:
            return False
        command.state, command.finished_at = CommandState.SUCCEEDED, now
        activity_record(
            tenant_id=command.tenant_id,
            verb="command.succeeded",
            message=f"{command.action.capitalize()} confirmed ({source})",
            now=now,
            code=command.access_code,
            command=command,
            data={"source": source},
        )
        if command.access_code_id is not None:
            code = AccessCode.objects.select_related("lock").get(pk=command.access_code_id)
            _code_confirmed(code, command=command, outcome=outcome, now=now, source=source)
        if source != "response":  # the dispatcher loop sends the next one itself
            _enqueue_dispatch(command.lock_id)
    return True


def _code_confirmed(
    code: AccessCode, *, command: LockCommand, outcome: Outcome, now: datetime, source: str
) -> None:
    if command.action == CommandAction.DELETE:
        if _code_move(
            code, old=[CodeStatus.REMOVING], new=CodeStatus.REMOVED, now=now, command=command,
            is_scheduled_on_device=False, last_reason="",
        ):
            issues_resolve(lock=code.lock, code=code, kinds=None, now=now, why="code removed")
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
    status, scheduled = _status_when_confirmed(code, now)
    verification = Verification.READ_BACK if source == "reconcile" else Verification.VENDOR_ACK
    if _code_move(
        code, old=[CodeStatus.SETTING], new=status, now=now, command=command, note=source,
        is_scheduled_on_device=scheduled, verification=verification, vendor_code_ref=vendor_code_ref,
        last_reason="",
    ):
        issues_resolve(lock=code.lock, code=code, kinds=RESOLVED_WHEN_SET, now=now, why="code confirmed")


def command_fail(
    *,
    command: LockCommand,
    reason: str,
    now: datetime,
    detail: str = "",
    retry_after: float | None = None,
    clash_code_ref: str = "",
    source: str = "response",
) -> bool:
    """sent → failed / timed_out, then what the retry table says (DESIGN §4)."""
    reason = str(reason)
    state = CommandState.TIMED_OUT if reason == Reason.TIMEOUT else CommandState.FAILED
    with transaction.atomic():
        done = LockCommand.objects.filter(pk=command.pk, state=CommandState.SENT).update(
            state=state, finished_at=now, reason=reason, vendor_detail=detail[:2000]
        )
        if not done:
            return False
        command.state, command.reason, command.vendor_detail = state, reason, detail
        activity_record(
            tenant_id=command.tenant_id,
            verb=f"command.{state}",
            message=f"{command.action.capitalize()} {state.replace('_', ' ')}: {reason}"
            + (f" — {detail[:200]}" if detail else ""),
            now=now,
            code=command.access_code,
            command=command,
            data={"reason": reason, "source": source, "clash_code_ref": clash_code_ref},
        )
        lock = Lock.objects.select_related("provider_account").get(pk=command.lock_id)
        code = (
            AccessCode.objects.select_related("lock").get(pk=command.access_code_id)
            if command.access_code_id
            else None
        )
        if reason == Reason.AUTH_FAILED:
            account_flag_auth_failed(account=lock.provider_account, detail=detail, now=now)
        if code is None:
            issue_open(lock=lock, code=None, command=command, kind=issue_kind_for_reason(reason), now=now,
                       detail=detail)
        elif code.status == CodeStatus.REMOVING and command.action != CommandAction.DELETE:
            # The code is on its way out: no retry, no new PIN; the queued delete is what matters now.
            AccessCode.objects.filter(pk=code.pk).update(last_reason=reason)
        elif reason == Reason.DUPLICATE_PIN:
            _after_duplicate_pin(code, command=command, clash_code_ref=clash_code_ref, detail=detail, now=now)
        elif command.action == CommandAction.DELETE and reason == Reason.NOT_FOUND_ON_DEVICE:
            # Nothing to delete: the lock does not hold it, which is what we wanted.
            _code_move(code, old=[CodeStatus.REMOVING], new=CodeStatus.REMOVED, now=now, command=command,
                       note="not on the lock", is_scheduled_on_device=False)
        elif is_transient(reason) and command.attempt <= len(BACKOFF_MINUTES):
            _retry_later(code, command=command, reason=reason, detail=detail, retry_after=retry_after, now=now)
        else:
            _code_fail(code, command=command, reason=reason, detail=detail, now=now)
        if source != "response":
            _enqueue_dispatch(command.lock_id)
    return True


def command_time_out(*, command: LockCommand, now: datetime, detail: str = "") -> bool:
    return command_fail(
        command=command, reason=Reason.TIMEOUT, now=now, source="sweep",
        detail=detail or "no outcome from the vendor within the hard limit",
    )


def _retry_later(
    code: AccessCode, *, command: LockCommand, reason: str, detail: str, retry_after: float | None, now: datetime
) -> None:
    delay = timedelta(minutes=BACKOFF_MINUTES[command.attempt - 1])
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    AccessCode.objects.filter(pk=code.pk).update(last_reason=reason)
    issue_open(lock=code.lock, code=code, command=command, kind=issue_kind_for_reason(reason), now=now,
               detail=detail or f"{command.action} failed ({reason}); retrying automatically")
    if code.status in (CodeStatus.SETTING, CodeStatus.REMOVING):
        _queue(code, command.action, now=now, attempt=command.attempt + 1, not_before=now + delay)


def _code_fail(code: AccessCode, *, command: LockCommand | None, reason: str, detail: str, now: datetime) -> None:
    _code_move(code, old=[CodeStatus.SETTING, CodeStatus.REMOVING, CodeStatus.SET, CodeStatus.UNSET],
               new=CodeStatus.FAILED, now=now, command=command, note=reason, last_reason=reason)
    issue_open(lock=code.lock, code=code, command=command, kind=issue_kind_for_reason(reason), now=now,
               detail=detail or f"{reason}")


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
    can_regenerate = (
        not code.guest_notified and not lock_chooses_pin(code.lock) and command.action != CommandAction.DELETE
        and clashes_so_far < MAX_DUPLICATE_REGENERATIONS
    )
    if can_regenerate:
        try:
            _code_new_pin(code, now=now, exclude=(code.pin,))
        except pins_module().NoPinAvailable:
            can_regenerate = False
    if can_regenerate:
        issue_open(lock=code.lock, code=code, command=command, kind=IssueKind.DUPLICATE_PIN, now=now,
                   detail=f"The lock already holds this PIN{where}; a new PIN was generated.", data=data)
        AccessCode.objects.filter(pk=code.pk).update(last_reason=Reason.DUPLICATE_PIN)
        _queue(code, command.action, now=now, attempt=command.attempt + 1)
        return
    _code_move(code, old=[CodeStatus.SETTING, CodeStatus.REMOVING, CodeStatus.SET, CodeStatus.UNSET],
               new=CodeStatus.FAILED, now=now, command=command, note="duplicate_pin",
               last_reason=Reason.DUPLICATE_PIN)
    issue_open(lock=code.lock, code=code, command=command, kind=IssueKind.DUPLICATE_PIN, now=now,
               detail=f"The lock already holds this PIN{where}. The guest has it already, so staff must "
               "choose: remove the other code or give the guest a new PIN. " + detail, data=data)


# --------------------------------------------------------------------------- issues


def issue_open(
    *,
    lock: Lock,
    code: AccessCode | None,
    kind: str,
    now: datetime,
    command: LockCommand | None = None,
    detail: str = "",
    data: dict[str, Any] | None = None,
) -> LockIssue:
    """Open an issue, or bump the open one for (lock, code, kind)."""
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


def issue_dismiss(*, issue: LockIssue, actor: AbstractBaseUser | None, now: datetime) -> None:
    if not LockIssue.objects.filter(pk=issue.pk, status=IssueStatus.OPEN).update(
        status=IssueStatus.DISMISSED, resolved_at=now
    ):
        raise TransitionError("Only an open issue can be dismissed.")
    issue.status, issue.resolved_at = IssueStatus.DISMISSED, now
    activity_record(
        tenant_id=issue.tenant_id, verb="issue.dismissed", message=f"Issue dismissed: {issue.get_kind_display()}",
        now=now, lock_id=issue.lock_id, code=issue.access_code, actor=actor, data={"issue": issue.pk},
    )


# --------------------------------------------------------------------------- accounts and devices


def account_flag_auth_failed(*, account: ProviderAccount, detail: str, now: datetime) -> None:
    """The vendor rejected the credentials: flag the account and show why on every one of its locks."""
    from providers.models import AccountStatus, ProviderAccount

    ProviderAccount.objects.filter(pk=account.pk).update(
        status=AccountStatus.AUTH_FAILED, status_detail=detail[:2000], last_checked_at=now
    )
    account.status = AccountStatus.AUTH_FAILED
    for lock in Lock.objects.filter(provider_account=account):
        issue_open(lock=lock, code=None, kind=IssueKind.AUTH_FAILED, now=now,
                   detail=detail or f"{account.name}: the vendor rejected the credentials")


def account_mark_ok(*, account: ProviderAccount, now: datetime) -> None:
    from providers.models import AccountStatus, ProviderAccount

    ProviderAccount.objects.filter(pk=account.pk).update(
        status=AccountStatus.OK, status_detail="", last_checked_at=now
    )
    account.status = AccountStatus.OK
    for lock in Lock.objects.filter(provider_account=account):
        issues_resolve(lock=lock, code=None, kinds=[IssueKind.AUTH_FAILED], now=now, why="credentials work")


def lock_observe_device(
    *, lock: Lock, now: datetime, online: bool | None = None, battery_level: float | None = None
) -> None:
    """A device report (webhook, health poll): keep online/battery and their issues in step."""
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
        if battery_level < LOW_BATTERY_LEVEL:
            issue_open(lock=lock, code=None, kind=IssueKind.LOW_BATTERY, now=now,
                       detail=f"Battery at {battery_level:.0%}.", data={"battery_level": battery_level})
        else:
            issues_resolve(lock=lock, code=None, kinds=[IssueKind.LOW_BATTERY], now=now, why="battery ok")


def account_check_health(*, account: ProviderAccount, now: datetime) -> None:
    """Poll the vendor's device list: online/battery per lock, and whether the credentials still work."""
    from providers.registry import get_provider

    try:
        devices = get_provider(account).list_devices()
    except ProviderError as exc:
        if exc.reason == Reason.AUTH_FAILED:
            with transaction.atomic():
                account_flag_auth_failed(account=account, detail=exc.vendor_detail, now=now)
        return
    with transaction.atomic():
        account_mark_ok(account=account, now=now)
        by_device = {device.vendor_device_id: device for device in devices}
        for lock in Lock.objects.filter(provider_account=account):
            device = by_device.get(lock.vendor_device_id)
            if device is not None:
                lock_observe_device(lock=lock, now=now, online=device.online, battery_level=device.battery_level)


# --------------------------------------------------------------------------- PINs and names


def pins_module() -> Any:
    from locks import pins

    return pins


def lock_chooses_pin(lock: Lock) -> bool:
    from locks import pins

    return pins.lock_chooses_pin(lock.requirements or {})


def live_pins(lock: Lock, *, exclude_code: AccessCode | None = None) -> set[str]:
    from locks import pins

    return set(pins.live_pins_on_lock(lock, exclude_code_id=exclude_code.pk if exclude_code else None))


def fit_name(name: str, lock: Lock) -> str:
    from locks import pins

    return pins.fit_name(name, lock.requirements or {})[:64]


def _pins_for_locks(booking: Booking, locks: list[Lock]) -> tuple[dict[int, str], str]:
    """PIN per lock for a booking's new codes, and the common_code_key when one PIN serves them all.
    A lock missing from the answer either picks its own PIN or has no free PIN left."""
    from locks import pins

    settable = [lock for lock in locks if not lock_chooses_pin(lock)]
    if not settable:
        return {}, ""
    taken = {lock.pk: live_pins(lock) for lock in settable}
    common_key = f"booking-{booking.pk}" if len(settable) > 1 else ""
    if booking.property.pin_policy == "phone_last4" and booking.guest_phone:
        phone = {lock.pk: pins.phone_pin(booking.guest_phone, lock.requirements or {}, taken=taken[lock.pk])
                 for lock in settable}
        if None not in phone.values() and len(set(phone.values())) == 1:
            return {pk: str(pin) for pk, pin in phone.items()}, common_key
    default_length = booking.tenant.default_code_length
    common = pins.common_pin(
        [lock.requirements or {} for lock in settable],
        taken_per_lock=[taken[lock.pk] for lock in settable],
        default_length=default_length,
    )
    if common:
        return {lock.pk: common for lock in settable}, common_key
    chosen: dict[int, str] = {}
    for lock in settable:
        try:
            chosen[lock.pk] = pins.generate_pin(lock.requirements or {}, taken=taken[lock.pk],
                                                default_length=default_length)
        except pins.NoPinAvailable:
            continue
    return chosen, ""


def _code_new_pin(code: AccessCode, *, now: datetime, exclude: Iterable[str] = (), pin: str | None = None) -> str:
    """Generate a PIN, or take the one a person chose after checking it against the lock's rules and
    every live code on it (raises locks.pins.PinRejected before anything is saved or sent)."""
    from locks import pins

    taken = live_pins(code.lock, exclude_code=code) | set(exclude)
    if pin is not None:
        pins.assert_pin_usable(pin, code.lock.requirements or {}, taken)
        code.pin = pin
    else:
        code.pin = pins.generate_pin(code.lock.requirements or {}, taken=taken,
                                     default_length=code.tenant.default_code_length)
    code.guest_notified = False
    code.common_code_key = ""
    code.save(update_fields=["pin", "guest_notified", "common_code_key", "updated_at"])
    activity_record(tenant_id=code.tenant_id, verb="pin.regenerated", message=f"New PIN generated for {code.name!r}",
                    now=now, code=code)
    return code.pin


# --------------------------------------------------------------------------- booking → codes


def code_window(*, booking: Booking, lock: Lock, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(starts_at, ends_at, program_at) for a booking's code on `lock` (DESIGN §4 windows and timing).

    DST-safe: buffers and leads are real elapsed time, so the arithmetic is done in UTC. (Python adds to
    a datetime in its own zone by wall clock, which would shift a 72 h lead by an hour across a change,
    and would make the answer depend on whether the booking came from a form or from the database.)"""
    prop = booking.property
    starts_at = booking.check_in.astimezone(UTC) - timedelta(minutes=prop.before_minutes)
    ends_at = booking.check_out.astimezone(UTC) + timedelta(minutes=prop.after_minutes)
    if lock.native_scheduling:
        lead = timedelta(hours=engine_setting("NATIVE_PRELOAD_HOURS"))
    else:
        lead = timedelta(minutes=engine_setting("JUST_IN_TIME_MINUTES"))
    return starts_at, ends_at, max(starts_at - lead, now)


@transaction.atomic
def code_program(
    *, code: AccessCode, now: datetime, actor: AbstractBaseUser | None = None, dispatch: bool = True
) -> bool:
    """unset → setting: the code is due (its program_at has come), queue its create. `dispatch=False`
    when the caller dispatches the lock itself (the tick)."""
    if not _code_move(code, old=[CodeStatus.UNSET], new=CodeStatus.SETTING, now=now, actor=actor, note="due"):
        return False
    _queue(code, CommandAction.CREATE, now=now, actor=actor)
    if dispatch:
        _enqueue_dispatch(code.lock_id)
    return True


@transaction.atomic
def code_requeue_create(
    *, code: AccessCode, now: datetime, actor: AbstractBaseUser | None = None, note: str = ""
) -> None:
    """Program a code again from scratch (missing on the lock, lock cleared, failed and retried)."""
    _code_move(code, old=[CodeStatus.SET, CodeStatus.UNSET, CodeStatus.FAILED, CodeStatus.SETTING],
               new=CodeStatus.SETTING, now=now, actor=actor, note=note, last_reason="")
    if code.status == CodeStatus.SETTING:
        _queue(code, CommandAction.CREATE, now=now, actor=actor)
        _enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_push_update(*, code: AccessCode, now: datetime, actor: AbstractBaseUser | None = None) -> None:
    """The desired state of a code that is (or is being put) on the lock changed: queue an update."""
    _code_move(code, old=[CodeStatus.SET, CodeStatus.UNSET], new=CodeStatus.SETTING, now=now, actor=actor,
               note="changed")
    if code.status == CodeStatus.SETTING:
        _queue(code, CommandAction.UPDATE, now=now, actor=actor)
        _enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_remove(*, code: AccessCode, now: datetime, actor: AbstractBaseUser | None = None, note: str = "") -> None:
    """Take a code off its lock: a delete if it may be there, straight to removed if it never left us."""
    if code.status in (CodeStatus.REMOVED, CodeStatus.REMOVING):
        return
    if _never_sent(code) or (code.status == CodeStatus.FAILED and not code.vendor_code_ref):
        for command in code.commands.filter(state=CommandState.QUEUED):
            LockCommand.objects.filter(pk=command.pk, state=CommandState.QUEUED).update(
                state=CommandState.CANCELLED, finished_at=now
            )
        _code_move(code, old=[CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.FAILED], new=CodeStatus.REMOVED,
                   now=now, actor=actor, note=note or "never sent")
        issues_resolve(lock=code.lock, code=code, kinds=None, now=now, why="code removed")
        return
    if _code_move(code, old=[CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET, CodeStatus.FAILED],
                  new=CodeStatus.REMOVING, now=now, actor=actor, note=note):
        for command in code.commands.filter(state=CommandState.QUEUED, action=CommandAction.CREATE):
            LockCommand.objects.filter(pk=command.pk, state=CommandState.QUEUED).update(
                state=CommandState.CANCELLED, finished_at=now
            )
        _queue(code, CommandAction.DELETE, now=now, actor=actor)
        _enqueue_dispatch(code.lock_id)


@transaction.atomic
def codes_sync_for_booking(*, booking: Booking, now: datetime, actor: AbstractBaseUser | None = None) -> None:
    """Make the booking's AccessCodes what the booking wants: one per lock of its property. Idempotent."""
    from portal.models import BookingStatus

    codes = list(
        AccessCode.objects.select_related("lock", "tenant").filter(booking=booking)
        .exclude(status=CodeStatus.REMOVED).order_by("id")
    )
    locks = list(Lock.objects.filter(property_id=booking.property_id).order_by("id"))
    wanted = booking.status == BookingStatus.CONFIRMED
    lock_ids = {lock.pk for lock in locks}
    for code in codes:
        if not wanted or code.lock_id not in lock_ids:
            code_remove(code=code, now=now, actor=actor, note="booking cancelled" if not wanted else "moved")
    if not wanted:
        return
    by_lock = {code.lock_id: code for code in codes if code.lock_id in lock_ids}
    missing = []
    for lock in locks:
        starts_at, ends_at, program_at = code_window(booking=booking, lock=lock, now=now)
        code = by_lock.get(lock.pk)
        if code is None:
            if ends_at > now:
                missing.append(lock)
            continue
        _code_follow_booking(code, booking=booking, starts_at=starts_at, ends_at=ends_at, program_at=program_at,
                             now=now, actor=actor)
    if missing:
        _codes_create(booking, missing, now=now, actor=actor)


def _codes_create(booking: Booking, locks: list[Lock], *, now: datetime, actor: AbstractBaseUser | None) -> None:
    pins_by_lock, common_key = _pins_for_locks(booking, locks)
    for lock in locks:
        starts_at, ends_at, program_at = code_window(booking=booking, lock=lock, now=now)
        code = AccessCode.objects.create(
            tenant_id=booking.tenant_id, lock=lock, booking=booking, purpose=CodePurpose.GUEST,
            code_type=CodeType.TIME_BOUND, name=fit_name(booking.guest_name, lock),
            pin=pins_by_lock.get(lock.pk, ""), common_code_key=common_key if lock.pk in pins_by_lock else "",
            starts_at=starts_at, ends_at=ends_at, program_at=program_at,
        )
        activity_record(
            tenant_id=booking.tenant_id, verb="code.created",
            message=f"Code for {booking.guest_name} on {lock.name} planned; programmed at {program_at:%Y-%m-%d %H:%M} UTC",
            now=now, code=code, actor=actor,
            data={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
                  "program_at": program_at.isoformat()},
        )
        if not code.pin and not lock_chooses_pin(lock):
            _code_fail(code, command=None, reason=Reason.SLOTS_FULL, now=now,
                       detail="No free PIN valid for this lock was found; remove old codes or widen its rules.")
        elif program_at <= now:
            code_program(code=code, now=now, actor=actor)


def _code_follow_booking(
    code: AccessCode,
    *,
    booking: Booking,
    starts_at: datetime,
    ends_at: datetime,
    program_at: datetime,
    now: datetime,
    actor: AbstractBaseUser | None,
) -> None:
    name = fit_name(booking.guest_name, code.lock)
    window_changed = (code.starts_at, code.ends_at) != (starts_at, ends_at)
    if not window_changed and code.name == name:
        return
    if code.status == CodeStatus.REMOVING:
        return  # already on its way out (ended); a new stay gets new codes
    if ends_at <= now:
        code_remove(code=code, now=now, actor=actor, note="window ended")
        return
    not_yet_programmed = code.status == CodeStatus.UNSET and not code.is_scheduled_on_device
    fields: dict[str, Any] = {"starts_at": starts_at, "ends_at": ends_at, "name": name, "updated_at": now}
    if not_yet_programmed:
        fields["program_at"] = program_at
    AccessCode.objects.filter(pk=code.pk).update(**fields)
    for field_name, value in fields.items():
        setattr(code, field_name, value)
    activity_record(
        tenant_id=code.tenant_id, verb="code.changed",
        message=f"Code for {booking.guest_name} on {code.lock.name} now {starts_at:%Y-%m-%d %H:%M} → "
        f"{ends_at:%Y-%m-%d %H:%M} UTC",
        now=now, code=code, actor=actor,
        data={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
    )
    if not_yet_programmed:
        if program_at <= now:
            code_program(code=code, now=now, actor=actor)
    elif code.status in (CodeStatus.SETTING, CodeStatus.SET, CodeStatus.UNSET):
        code_push_update(code=code, now=now, actor=actor)


# --------------------------------------------------------------------------- tick transitions


@transaction.atomic
def code_activate_scheduled(*, code: AccessCode, now: datetime) -> bool:
    """A preloaded code on a natively scheduling lock: its window started, the lock enforces it."""
    return _code_move(code, old=[CodeStatus.UNSET], new=CodeStatus.SET, now=now, note="window started",
                      is_scheduled_on_device=False)


def code_flag_late(*, code: AccessCode, now: datetime) -> LockIssue | None:
    """The code's window has begun and it is not on the lock yet: say so on the code, with why, so staff
    hear it before the guest does (a JIT lead shorter than the timeouts of the commands ahead of it on
    the one-at-a-time queue can make a healthy code late). The issue resolves when the code is set."""
    if code.status != CodeStatus.SETTING or code.starts_at is None or code.starts_at > now:
        return None
    in_flight = (
        LockCommand.objects.filter(lock_id=code.lock_id, state=CommandState.SENT).select_related("access_code").first()
    )
    if in_flight is not None and in_flight.access_code_id != code.pk:
        other = in_flight.access_code.name if in_flight.access_code else "the lock"
        kind = IssueKind.BUSY
        detail = (f"Not on the lock at the start of its window: waiting behind command #{in_flight.pk} "
                  f"({in_flight.action} for {other!r}, sent {in_flight.sent_at:%Y-%m-%d %H:%M} UTC).")
    else:
        kind = IssueKind.COMMAND_TIMEOUT
        detail = ("Not on the lock at the start of its window: the vendor has not confirmed it yet"
                  + (f" (command #{in_flight.pk} sent {in_flight.sent_at:%Y-%m-%d %H:%M} UTC)." if in_flight else "."))
    return issue_open(lock=code.lock, code=code, kind=kind, now=now, command=in_flight, detail=detail)


@transaction.atomic
def code_report_failure(*, code: AccessCode, reason: str, now: datetime, detail: str = "") -> bool:
    """The vendor says a code it holds failed on the lock with no command of ours in flight (a native
    schedule that did not start, a lock that dropped it): the code fails with an issue saying why."""
    if code.status not in (CodeStatus.SET, CodeStatus.UNSET) or (
        code.status == CodeStatus.UNSET and not code.is_scheduled_on_device
    ):
        return False
    _code_fail(code, command=None, reason=reason or Reason.VENDOR_ERROR, detail=detail, now=now)
    return True


# --------------------------------------------------------------------------- staff actions


def _lock_code(code: AccessCode) -> AccessCode:
    return AccessCode.objects.select_for_update().select_related("lock", "tenant").get(pk=code.pk)


def code_retry_now(*, code: AccessCode, actor: AbstractBaseUser | None, now: datetime) -> None:
    """Act on a stuck code now: ask the vendor about its command in flight, skip its backoff, or put a
    failed code back in the queue."""
    from locks.sweep import command_poll

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
def _code_retry_queued(*, code: AccessCode, actor: AbstractBaseUser | None, now: datetime) -> None:
    code = _lock_code(code)
    queued = code.commands.filter(state=CommandState.QUEUED)
    if queued.exists():
        queued.update(not_before=None)
    elif code.status == CodeStatus.FAILED:
        if code.ends_at is not None and code.ends_at <= now:
            code_remove(code=code, now=now, actor=actor, note="window ended")
        else:
            _code_move(code, old=[CodeStatus.FAILED], new=CodeStatus.SETTING, now=now, actor=actor,
                       note="retry requested", last_reason="")
            _queue(code, CommandAction.UPDATE if code.vendor_code_ref else CommandAction.CREATE,
                   now=now, actor=actor)
    elif code.status == CodeStatus.UNSET and not code.is_scheduled_on_device:
        code_program(code=code, now=now, actor=actor)
    else:
        raise TransitionError(f"A {code.status} code has nothing to retry.")
    activity_record(tenant_id=code.tenant_id, verb="code.retry_now", message=f"Retry requested for {code.name!r}",
                    now=now, code=code, actor=actor)
    _enqueue_dispatch(code.lock_id)


@transaction.atomic
def code_regenerate_pin(
    *, code: AccessCode, actor: AbstractBaseUser | None, now: datetime, pin: str | None = None
) -> AccessCode:
    """A new PIN for the code (generated, or `pin` when a person chose one); pushed to the lock if it is
    there, or queued again if it had failed."""
    code = _lock_code(code)
    if code.status in (CodeStatus.REMOVING, CodeStatus.REMOVED):
        raise TransitionError("A code being removed cannot get a new PIN.")
    if lock_chooses_pin(code.lock):
        raise TransitionError("This lock chooses its own PINs.")
    _code_new_pin(code, now=now, pin=pin)
    activity_record(tenant_id=code.tenant_id, verb="code.new_pin", message=f"New PIN requested for {code.name!r}",
                    now=now, code=code, actor=actor)
    if code.status == CodeStatus.FAILED:
        _code_move(code, old=[CodeStatus.FAILED], new=CodeStatus.SETTING, now=now, actor=actor, note="new PIN",
                   last_reason="")
        _queue(code, CommandAction.UPDATE if code.vendor_code_ref else CommandAction.CREATE, now=now, actor=actor)
        _enqueue_dispatch(code.lock_id)
    elif code.status != CodeStatus.UNSET or code.is_scheduled_on_device:
        code_push_update(code=code, now=now, actor=actor)
    return code


def code_reveal_pin(*, code: AccessCode, actor: AbstractBaseUser | None, now: datetime) -> str:
    activity_record(tenant_id=code.tenant_id, verb="pin.revealed", message=f"PIN of {code.name!r} revealed",
                    now=now, code=code, actor=actor)
    return code.pin


def code_mark_guest_notified(*, code: AccessCode, actor: AbstractBaseUser | None, now: datetime) -> None:
    AccessCode.objects.filter(pk=code.pk).update(guest_notified=True)
    code.guest_notified = True
    activity_record(tenant_id=code.tenant_id, verb="code.guest_notified", message=f"Guest told the PIN of {code.name!r}",
                    now=now, code=code, actor=actor)


def lock_request_reconcile(*, lock: Lock, now: datetime, actor: AbstractBaseUser | None = None) -> None:
    Lock.objects.filter(pk=lock.pk).update(reconcile_requested=True)
    lock.reconcile_requested = True
    activity_record(tenant_id=lock.tenant_id, verb="lock.reconcile_requested",
                    message=f"Reconciliation of {lock.name} requested", now=now, lock_id=lock.pk, actor=actor)


def lock_reload_codes(*, lock: Lock, actor: AbstractBaseUser | None, now: datetime) -> None:
    """Ask the lock to report its codes afresh, then read them (or read them now if it cannot)."""
    from locks.reconcile import lock_reconcile
    from providers.registry import get_provider

    activity_record(tenant_id=lock.tenant_id, verb="lock.reload_codes", message=f"Reload of codes on {lock.name}",
                    now=now, lock_id=lock.pk, actor=actor)
    try:
        get_provider(lock.provider_account).reload_codes(lock)
    except ProviderError as exc:
        if exc.reason != Reason.UNSUPPORTED:
            issue_open(lock=lock, code=None, kind=issue_kind_for_reason(exc.reason), now=now, detail=str(exc))
            return
        lock_reconcile(lock=lock, now=now, actor=actor)
        return
    lock_request_reconcile(lock=lock, now=now, actor=actor)


def lock_delete_all_and_reprogram(*, lock: Lock, actor: AbstractBaseUser | None, now: datetime) -> None:
    """The split-brain fix: clear every code the vendor reports, then queue every live code afresh."""
    from providers.registry import get_provider

    provider = get_provider(lock.provider_account)
    ours = {code.vendor_code_ref: code for code in AccessCode.objects.filter(lock=lock).exclude(vendor_code_ref="")}
    observed = provider.read_codes(lock)
    refs = [item.vendor_code_ref for item in observed] if observed is not None else list(ours)
    failures = []
    for ref in refs:
        try:
            if ref in ours:
                provider.delete_code(lock, ours[ref])
            else:
                provider.delete_observed_code(lock, ref)
        except ProviderError as exc:
            if exc.reason != Reason.NOT_FOUND_ON_DEVICE:
                failures.append(f"{ref}: {exc}")
    with transaction.atomic():
        activity_record(
            tenant_id=lock.tenant_id, verb="lock.delete_all", message=f"Deleted {len(refs)} code(s) on {lock.name}",
            now=now, lock_id=lock.pk, actor=actor, data={"refs": refs, "failures": failures},
        )
        LockCommand.objects.filter(lock=lock, state=CommandState.QUEUED).update(
            state=CommandState.CANCELLED, finished_at=now
        )
        live = AccessCode.objects.select_related("lock", "tenant").filter(
            lock=lock, status__in=[CodeStatus.SETTING, CodeStatus.SET, CodeStatus.UNSET, CodeStatus.FAILED]
        )
        for code in live:
            if code.status == CodeStatus.UNSET and not code.is_scheduled_on_device:
                continue  # not due yet: tick programs it when its time comes
            if code.ends_at is not None and code.ends_at <= now:
                _code_move(code, old=[code.status], new=CodeStatus.REMOVED, now=now, actor=actor, note="cleared")
                continue
            AccessCode.objects.filter(pk=code.pk).update(
                vendor_code_ref="", is_scheduled_on_device=False, verification=Verification.NONE
            )
            code.vendor_code_ref, code.is_scheduled_on_device = "", False
            code_requeue_create(code=code, now=now, actor=actor, note="reprogram")
        issues_resolve(lock=lock, code=None, kinds=[IssueKind.DESYNC, IssueKind.UNMANAGED_CODE], now=now,
                       why="lock cleared")
        for issue in LockIssue.objects.filter(lock=lock, status=IssueStatus.OPEN, kind=IssueKind.DESYNC):
            issues_resolve(lock=lock, code=issue.access_code, kinds=[IssueKind.DESYNC], now=now, why="lock cleared")
        _enqueue_dispatch(lock.pk)


def issue_adopt_code(*, issue: LockIssue, actor: AbstractBaseUser | None, now: datetime) -> list[AccessCode]:
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
        LockIssue.objects.filter(pk=issue.pk, status=IssueStatus.OPEN).update(
            status=IssueStatus.RESOLVED, resolved_at=now
        )
        issue.status = IssueStatus.RESOLVED
    return adopted


def issue_remove_unmanaged_code(*, issue: LockIssue, actor: AbstractBaseUser | None, now: datetime) -> None:
    """Delete the unmanaged code(s) of an issue from the lock."""
    from providers.registry import get_provider

    if issue.kind != IssueKind.UNMANAGED_CODE or issue.status != IssueStatus.OPEN:
        raise TransitionError("Only an open unmanaged-code issue can have its codes removed.")
    provider = get_provider(issue.lock.provider_account)
    failures = []
    refs = [item["vendor_code_ref"] for item in issue.data.get("codes", [])]
    for ref in refs:
        try:
            provider.delete_observed_code(issue.lock, ref)
        except ProviderError as exc:
            if exc.reason != Reason.NOT_FOUND_ON_DEVICE:
                failures.append(f"{ref}: {exc}")
    with transaction.atomic():
        activity_record(tenant_id=issue.tenant_id, verb="lock.unmanaged_removed",
                        message=f"Removed {len(refs) - len(failures)} unmanaged code(s)", now=now,
                        lock_id=issue.lock_id, actor=actor, data={"refs": refs, "failures": failures})
        if failures:
            issue_open(lock=issue.lock, code=None, kind=IssueKind.UNMANAGED_CODE, now=now,
                       detail="Could not remove: " + "; ".join(failures))
            return
        LockIssue.objects.filter(pk=issue.pk, status=IssueStatus.OPEN).update(
            status=IssueStatus.RESOLVED, resolved_at=now
        )
        issue.status = IssueStatus.RESOLVED


__all__ = [
    "BACKOFF_MINUTES",
    "TransitionError",
    "account_check_health",
    "account_flag_auth_failed",
    "activity_record",
    "code_activate_scheduled",
    "code_mark_guest_notified",
    "code_program",
    "code_push_update",
    "code_regenerate_pin",
    "code_remove",
    "code_report_failure",
    "code_requeue_create",
    "code_retry_now",
    "code_reveal_pin",
    "code_window",
    "codes_sync_for_booking",
    "command_acknowledge",
    "command_claim",
    "command_complete",
    "command_fail",
    "command_time_out",
    "issue_adopt_code",
    "issue_dismiss",
    "issue_open",
    "issue_remove_unmanaged_code",
    "issues_resolve",
    "lock_delete_all_and_reprogram",
    "lock_observe_device",
    "lock_reload_codes",
    "lock_request_reconcile",
]

