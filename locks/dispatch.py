"""Per-lock command dispatch (DESIGN §4 "Commands, one at a time per lock"): the only door for vendor
writes and lock reads.

Each lock has a queue of commands and at most one `sent`. Claiming is a compare-and-swap update guarded
by the partial unique index `command_one_in_flight_per_lock`, with `SKIP LOCKED` on PostgreSQL so many
workers can dispatch at once. The vendor is called outside any transaction: a slow vendor must not hold
row locks, and a crash after the claim leaves a `sent` command that the sweeper resolves. Lock-wide work
(read the codes, reload them, delete all, remove one foreign code) waits its turn like the rest.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When

from locks import pins, ratelimits
from locks.commands import (
    command_acknowledge,
    command_complete,
    command_fail,
    command_record_sending,
    command_unanswered_creates,
)
from locks.conf import engine
from locks.issues import issue_open
from locks.models import LIVE_CODE_STATUSES, AccessCode, CommandAction, CommandState, IssueKind, LockCommand
from locks.reconcile import lock_apply_reading, lock_clear, lock_request_reconcile, observed_carries
from locks.selectors import lock_slot_holders
from portal.encryption import fingerprint
from providers.base import ObservedCode, Outcome, Progress, Provider, ProviderError, Reason, Receipt
from providers.registry import get_provider

logger = logging.getLogger(__name__)


def _by_urgency(ready: QuerySet[LockCommand]) -> QuerySet[LockCommand]:
    """The lock's ready commands, most urgent first (DESIGN §4): deletes (a code that must leave the door),
    then creates and updates by how soon their window starts (far-future preloads last), oldest first
    among equals. Lock-wide work keeps its place in line: whatever was queued before it goes first, and
    whatever came after waits for it (a read or a delete-all sees the lock as it was asked about)."""
    barrier = ready.filter(access_code__isnull=True).order_by("id").values_list("id", flat=True).first()
    if barrier is not None:
        ready = ready.filter(id__lte=barrier)
    window = AccessCode.objects.filter(pk=OuterRef("access_code_id")).values("starts_at")[:1]
    return ready.annotate(
        urgency=Case(
            When(action=CommandAction.DELETE, then=Value(0)),
            When(access_code__isnull=True, then=Value(2)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        window_starts=Subquery(window),
    ).order_by("urgency", F("window_starts").asc(nulls_first=True), "id")


def _claim_next(*, lock_id: int, now: datetime) -> LockCommand | None:
    with transaction.atomic():
        if LockCommand.objects.filter(lock_id=lock_id, state=CommandState.SENT).exists():
            return None
        ready = LockCommand.objects.filter(lock_id=lock_id, state=CommandState.QUEUED).filter(
            Q(not_before__isnull=True) | Q(not_before__lte=now)
        )
        while True:
            candidates = _by_urgency(ready)
            if connection.features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True, of=("self",))
            command = candidates.select_related("lock", "access_code").first()
            if command is None or not _wait_for_a_slot(command, now=now):
                break
            ready = ready.exclude(pk=command.pk)
        # Over a vendor rate limit, the claim is undone and the command waits for a token (not_before).
        if command is None or not ratelimits.command_claim_within_limits(command=command, now=now):
            return None
    return command


def _wait_for_a_slot(command: LockCommand, *, now: datetime) -> bool:
    """Capacity (DESIGN §4): a create that would not fit the lock (`max_active_codes`, counting unmanaged
    codes seen on it) is not sent. It waits with a `slots_full` issue naming what holds the slots, and is
    looked at again after SLOTS_RECHECK_MINUTES (the tick's dispatch), so it goes out by itself once a
    slot frees, with no busy loop in between. True when the command must wait."""
    code, capacity = command.access_code, (command.lock.requirements or {}).get("max_active_codes")
    if command.action != CommandAction.CREATE or code is None or not capacity:
        return False
    holders = lock_slot_holders(lock=command.lock, exclude_code_id=code.pk)
    if len(holders) < int(capacity):
        return False
    recheck = now + timedelta(minutes=max(engine().SLOTS_RECHECK_MINUTES, 1))
    LockCommand.objects.filter(pk=command.pk, state=CommandState.QUEUED).update(not_before=recheck)
    issue_open(lock=command.lock, code=code, kind=IssueKind.SLOTS_FULL, now=now, data={"holders": holders},
               our_inference=(f"Not sent: the lock holds at most {capacity} codes and all are taken by "
                              f"{', '.join(holders)}. It goes out by itself when one of them is removed."))
    return True


def _call_vendor(provider: Provider, command: LockCommand, action: str) -> Receipt:
    lock, code = command.lock, command.access_code
    if command.action == CommandAction.RELOAD_CODES:
        return provider.reload_codes(lock)
    if command.action == CommandAction.REMOVE_CODE:
        return provider.delete_observed_code(lock, command.target_ref)
    if code is None:
        raise ProviderError(Reason.UNSUPPORTED, f"{command.action} needs an access code")
    calls = {
        CommandAction.CREATE: provider.create_code,
        CommandAction.UPDATE: provider.update_code,
        CommandAction.DELETE: provider.delete_code,
    }
    if action not in calls:
        raise ProviderError(Reason.UNSUPPORTED, f"cannot dispatch {action}")
    return calls[CommandAction(action)](lock, code)


def pin_problem(command: LockCommand) -> tuple[str, str] | None:
    """(reason, detail) when the PIN about to be sent cannot go on the lock: caught here, not by the lock."""
    code = command.access_code
    if code is None or not code.pin or command.action not in (CommandAction.CREATE, CommandAction.UPDATE):
        return None
    requirements = command.lock.requirements or {}
    if pins.lock_chooses_pin(requirements):
        return None
    # Uniqueness among live codes is the database's job (code_unique_live_pin_per_lock); what can still
    # go wrong is a PIN that no longer fits the lock (its requirements were re-imported since).
    errors = pins.validate_pin(code.pin, requirements)
    if errors:
        return Reason.INVALID_PIN, "; ".join(errors) + " (caught before sending)"
    return None


def _read(provider: Provider, command: LockCommand, *, now: datetime) -> None:
    """READ_CODES and DELETE_ALL: read what the lock holds, then act on it (both answer at once)."""
    lock = command.lock
    try:
        observed = provider.read_codes(lock)
    except ProviderError as exc:
        command_fail(command=command, reason=exc.reason, detail=exc.vendor_detail, now=now)
        return
    if command.action == CommandAction.READ_CODES:
        report = lock_apply_reading(lock=lock, observed=observed, now=now, command=command)
        detail = "cannot be read" if not report.readable else f"{len(report.matched)} matched"
    else:
        # A lock that cannot be read is cleared of what we know we put there.
        refs = ([item.vendor_code_ref for item in observed if item.vendor_code_ref] if observed is not None
                else list(lock.access_codes.exclude(vendor_code_ref="").values_list("vendor_code_ref", flat=True)))
        lock_clear(lock=lock, refs=refs, now=now, command=command)
        detail = f"{len(refs)} code(s) to delete"
    command_complete(command=command, outcome=Outcome(Progress.DONE, detail=detail), now=now, source="response")


def send_command(*, command: LockCommand, now: datetime) -> None:
    """Send one claimed command and record what the vendor answered."""
    command = LockCommand.objects.select_related("lock__provider_account", "access_code__lock").get(pk=command.pk)
    provider = get_provider(command.lock.provider_account)
    if command.action in (CommandAction.READ_CODES, CommandAction.DELETE_ALL):
        _read(provider, command, now=now)
        return
    command_record_sending(command=command)
    problem = pin_problem(command)
    if problem is not None:
        command_fail(command=command, reason=problem[0], detail=problem[1], now=now)
        return
    action = command.action
    if command_unanswered_creates(command):
        action = _ask_before_creating_again(provider, command, now=now)
        if action == SETTLED:
            return
    try:
        receipt = _call_vendor(provider, command, action)
    except ProviderError as exc:
        if command.action == CommandAction.RELOAD_CODES and exc.reason == Reason.UNSUPPORTED:
            # This lock cannot be asked to report again: reading it is the closest thing.
            _read_instead(provider, command, now=now)
            return
        if exc.reason == Reason.RATE_LIMITED:  # every worker slows this scope down, not only this one
            ratelimits.command_rate_limited(command=command, retry_after=exc.retry_after, now=now)
        command_fail(
            command=command, reason=exc.reason, detail=exc.vendor_detail, retry_after=exc.retry_after,
            clash_code_ref=exc.clash_code_ref, now=now,
        )
        return
    except Exception as exc:  # an adapter bug must not leave the lock stuck with a command in flight
        logger.exception("provider call failed for command %s", command.pk)
        command_fail(command=command, reason=Reason.VENDOR_ERROR, detail=repr(exc)[:500], now=now)
        return
    command_acknowledge(
        command=command, vendor_ref=receipt.vendor_ref, vendor_code_ref=receipt.vendor_code_ref,
        pin=receipt.pin, summary=receipt.request_summary, now=now,
    )
    if command.action == CommandAction.RELOAD_CODES:
        # The lock reports its codes again (events, or a later read): read it at the next due run.
        lock_request_reconcile(lock=command.lock, now=now)
        receipt = Receipt(progress=Progress.DONE, detail=receipt.detail)
    if receipt.progress == Progress.DONE:
        outcome = Outcome(Progress.DONE, vendor_code_ref=receipt.vendor_code_ref, detail=receipt.detail)
        command_complete(command=command, outcome=outcome, now=now, source="response")
    elif receipt.progress == Progress.FAILED:
        outcome = Outcome(Progress.FAILED, reason=Reason.VENDOR_ERROR, detail=receipt.detail)
        command_complete(command=command, outcome=outcome, now=now, source="response")


SETTLED = "settled"  # nothing left to send: the command was completed, adopted or failed in place


def _ask_before_creating_again(provider: Provider, command: LockCommand, *, now: datetime) -> str:
    """An earlier send of this create has no recorded answer: read the lock and adopt that code if it
    landed (matched by slot, else by the name and PIN it sent: `reconcile.observed_carries`), so a second create
    never leaves an orphan carrying the guest's name and an old PIN. Returns the action to send now."""
    lock, code = command.lock, command.access_code
    assert code is not None  # a create always has its code
    try:
        observed = provider.read_codes(lock)
    except ProviderError as exc:
        # Not knowing is no reason to risk a duplicate: retry later, asking again first.
        command_fail(command=command, reason=exc.reason, detail=exc.vendor_detail, retry_after=exc.retry_after,
                     now=now)
        return SETTLED
    if observed is None:
        return CommandAction.CREATE  # this lock cannot be read: sending again is all there is
    attempts = command_unanswered_creates(command)
    found = _landed_attempt(command, attempts, observed)
    if found is None:
        return CommandAction.CREATE
    landed, attempt = found
    command_acknowledge(command=command, vendor_ref="", vendor_code_ref=landed.vendor_code_ref, pin="",
                        summary={"adopted": landed.vendor_code_ref, "after": attempt.pk}, now=now)
    if landed.status == "setting":
        return SETTLED  # the lock is still applying it: its outcome arrives like any other's
    # The lock's own word on the PIN where it can be read, else what that attempt sent.
    pin_held = fingerprint(landed.pin) if landed.pin is not None and code.pin_fingerprint else attempt.sent_pin_fingerprint
    current = (
        pin_held == code.pin_fingerprint and attempt.sent_name == code.name
        and (attempt.sent_starts_at, attempt.sent_ends_at) == (code.starts_at, code.ends_at)
    )
    if not current:
        return CommandAction.UPDATE  # it landed with values the code no longer wants: correct it in place
    outcome = Outcome(Progress.DONE, vendor_code_ref=landed.vendor_code_ref,
                      detail=f"an earlier unanswered create is on the lock (attempt {attempt.attempt})")
    command_complete(command=command, outcome=outcome, now=now,
                     source="reconcile" if landed.pin is not None else "response")
    return SETTLED


def _landed_attempt(
    command: LockCommand, attempts: list[LockCommand], observed: list[ObservedCode]
) -> tuple[ObservedCode, LockCommand] | None:
    """The code on the lock that one of `attempts` put there, and that attempt. Codes held by other live
    codes of the lock are never candidates."""
    others = set(
        AccessCode.objects.filter(lock_id=command.lock_id, status__in=LIVE_CODE_STATUSES)
        .exclude(pk=command.access_code_id).exclude(vendor_code_ref="").values_list("vendor_code_ref", flat=True)
    )
    candidates = [item for item in observed if item.vendor_code_ref and item.vendor_code_ref not in others]
    own_ref = command.access_code.vendor_code_ref if command.access_code is not None else ""
    for attempt in attempts:
        for item in candidates:
            if item.vendor_code_ref in (attempt.sent_code_ref, own_ref):
                return item, attempt
    for attempt in attempts:
        for item in candidates:
            if _carries(item, attempt):
                return item, attempt
    return None


def _carries(item: ObservedCode, attempt: LockCommand) -> bool:
    """The observed code carries what `attempt` sent (`reconcile.observed_carries`: PIN and name)."""
    return bool(attempt.sent_name) and observed_carries(item, pin_fingerprint=attempt.sent_pin_fingerprint,
                                                        name=attempt.sent_name)


def _read_instead(provider: Provider, command: LockCommand, *, now: datetime) -> None:
    command.action = CommandAction.READ_CODES  # in memory only: the row stays what staff asked for
    _read(provider, command, now=now)


def dispatch_lock(*, lock_id: int, now: datetime) -> int:
    """Send this lock's ready commands in order, one at a time, until one is left pending. Returns how
    many commands were sent. Safe to run concurrently: a dispatcher that loses a claim just stops."""
    sent = 0
    for _ in range(engine().MAX_COMMANDS_PER_RUN):
        command = _claim_next(lock_id=lock_id, now=now)
        if command is None:
            break
        send_command(command=command, now=now)
        sent += 1
        if LockCommand.objects.filter(pk=command.pk, state=CommandState.SENT).exists():
            break  # accepted, outcome later (webhook, sweep): the lock is busy until then
    return sent


def locks_with_ready_commands(*, now: datetime) -> list[int]:
    """Locks with a queued command whose time has come and nothing in flight (partial index scans)."""
    busy = LockCommand.objects.filter(state=CommandState.SENT).values("lock_id")
    return list(
        LockCommand.objects.filter(state=CommandState.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .exclude(lock_id__in=busy)
        .order_by()
        .values_list("lock_id", flat=True)
        .distinct()
    )
