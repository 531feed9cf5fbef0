"""Outcomes from vendor events (DESIGN §4 "Outcomes arrive four ways"): a stored webhook delivery is
applied here. Each normalized event is correlated with a command or a code and handed to the engine's one
completion path (`locks.commands.command_complete`) or to the writer of what it is about (device facts,
a code's life on the lock).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from locks.activity import activity_record
from locks.arrivals import code_record_denied, code_record_use
from locks.codes import code_activate_scheduled, code_report_failure
from locks.commands import command_complete
from locks.fleet import account_flag_disconnected, lock_observe_device
from locks.issues import issue_open, issues_resolve
from locks.models import (
    LIVE_CODE_STATUSES,
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    Lock,
    LockCommand,
    LockIssue,
)
from locks.reconcile import WINDOW_ROUNDING, lock_queue_read, lock_request_reconcile
from portal.encryption import fingerprint
from providers.base import DeviceCondition, EventKind, Outcome, Progress, Reason, VendorEvent
from providers.models import ProviderAccount, WebhookEvent
from providers.webhooks import webhook_events


@transaction.atomic
def event_process(*, event_id: int, now: datetime) -> str:
    """Apply one stored delivery. Idempotent: the event row is locked while it is applied and a processed
    event is not applied again (a broker may deliver the task twice, to two workers)."""
    event = (
        WebhookEvent.objects.select_for_update(of=("self",)).select_related("provider_account").filter(pk=event_id).first()
    )
    if event is None or event.processed_at is not None:
        return "skipped"
    account = event.provider_account
    results = []
    matched_command: LockCommand | None = None
    matched_code: AccessCode | None = None
    for vendor_event in webhook_events(account=account, payload=event.payload, headers=event.headers or {}):
        result, command, code = _apply(account, vendor_event, now=now)
        results.append(result)
        matched = command or code
        if matched is not None:
            activity_record(
                tenant_id=account.tenant_id, verb="webhook.matched",
                message=f"Webhook {vendor_event.raw_type or vendor_event.kind}: {result}", now=now,
                command=command, code=code, lock_id=matched.lock_id,
                data={"event": event.pk, "vendor_event_id": vendor_event.vendor_event_id},
            )
        matched_command = matched_command or command
        matched_code = matched_code or code
    summary = "; ".join(results) or "no events"
    WebhookEvent.objects.filter(pk=event.pk, processed_at__isnull=True).update(
        processed_at=now, result=summary[:200], matched_command=matched_command, matched_code=matched_code
    )
    return summary


# How far a vendor's clock (an event's occurred_at) may be behind ours (a command's sent_at).
VENDOR_CLOCK_SKEW = timedelta(seconds=10)

SUCCESS_KINDS = {
    EventKind.COMMAND_SUCCEEDED: None,
    EventKind.CODE_SET: (CommandAction.CREATE, CommandAction.UPDATE),
    EventKind.CODE_SCHEDULED: (CommandAction.CREATE, CommandAction.UPDATE),
    EventKind.CODE_REMOVED: (CommandAction.DELETE, CommandAction.REMOVE_CODE),
}
FAILURE_KINDS = {EventKind.COMMAND_FAILED, EventKind.CODE_FAILED}


def _lock_for(account: ProviderAccount, event: VendorEvent) -> Lock | None:
    if not event.vendor_device_id:
        return None
    return Lock.objects.filter(provider_account=account, vendor_device_id=event.vendor_device_id).first()


def _correlate(
    account: ProviderAccount, lock: Lock | None, event: VendorEvent, actions: tuple[str, ...] | None
) -> LockCommand | None:
    """vendor_ref; then (lock, vendor code ref); then the lock's single in-flight command — judged by what
    each command recorded it was sending when it was claimed, so the moment between the claim and the
    vendor's answer being written is no blind spot."""
    in_flight = LockCommand.objects.select_related("access_code__lock", "lock").filter(state=CommandState.SENT)
    if event.vendor_ref:
        command = in_flight.filter(lock__provider_account=account, vendor_ref=event.vendor_ref).first()
        if command is not None:
            return command
    if lock is None:
        return None
    if event.occurred_at is not None:
        # What happened before a command was sent is not news about it: a late report of an earlier attempt
        # names the same slot (a delete's retry, a create's) and must not end the attempt now on its way.
        in_flight = in_flight.exclude(sent_at__gt=event.occurred_at + VENDOR_CLOCK_SKEW)
    if event.vendor_code_ref:
        ref = event.vendor_code_ref
        command = in_flight.filter(lock=lock).filter(
            Q(access_code__vendor_code_ref=ref) | Q(target_ref=ref) | Q(sent_code_ref=ref)
        ).first()
        if command is not None:
            return command if _sent_this_pin(command, event) else None
    command = in_flight.filter(lock=lock).first()
    if command is None or (actions is not None and command.action not in actions):
        return None
    if event.vendor_ref:
        return None  # it names a command, and not this one
    if _names_another_code(lock, command, event):
        # Another code's slot. Only a failure can be ours: with one command in flight per lock, "slot 1
        # failed" while we set slot 2 means our PIN clashes with slot 1 — if slot 1 holds a PIN at all. A
        # success there is someone else's news (a window starting, a late or repeated event), and so is the
        # failure of a slot whose code is not on the lock (that code's own refusal, reported late) — even
        # before our own slot is known.
        clash = event.kind == EventKind.CODE_FAILED and _slot_may_hold_a_pin(lock, command, event.vendor_code_ref)
        return command if clash else None
    return command if _sent_this_pin(command, event) else None


def _command_ref(command: LockCommand) -> str:
    code = command.access_code
    return command.sent_code_ref or (code.vendor_code_ref if code is not None else command.target_ref)


def _names_another_code(lock: Lock, command: LockCommand, event: VendorEvent) -> bool:
    """The event names a code ref that is not this command's: another slot than the one it sends to, or,
    while its own is not known yet, a ref held by another live code of the lock."""
    ref = event.vendor_code_ref
    own = _command_ref(command)
    if not ref or ref == own:
        return False
    if own:
        return True
    return AccessCode.objects.filter(lock=lock, vendor_code_ref=ref, status__in=LIVE_CODE_STATUSES).exclude(
        pk=command.access_code_id
    ).exists()


def _slot_may_hold_a_pin(lock: Lock, command: LockCommand, ref: str) -> bool:
    """Whether the lock may hold a PIN in slot `ref`: a slot none of our codes was sent to holds whatever it
    holds (a code added at the keypad), and one of ours does while its code is on the lock (set, being
    removed, or preloaded there). A slot of ours whose code is not on it (its create refused or still on
    its way) holds nothing our PIN could clash with."""
    ours = AccessCode.objects.filter(lock=lock).exclude(pk=command.access_code_id).filter(
        Q(vendor_code_ref=ref) | Q(commands__sent_code_ref=ref) | Q(commands__target_ref=ref)
    ).distinct()
    if not ours.exists():
        return True
    return ours.filter(vendor_code_ref=ref).filter(
        Q(status__in=(CodeStatus.SET, CodeStatus.REMOVING)) | Q(status=CodeStatus.UNSET, is_scheduled_on_device=True)
    ).exists()


def _sent_this_pin(command: LockCommand, event: VendorEvent) -> bool:
    """A success that reports a PIN reports the PIN this command sent, or it is not this command's news
    (an earlier value of the code, repeated or late)."""
    if event.kind in FAILURE_KINDS or event.pin is None or not command.sent_pin_fingerprint:
        return True
    return fingerprint(event.pin) == command.sent_pin_fingerprint


def _apply(
    account: ProviderAccount, event: VendorEvent, *, now: datetime
) -> tuple[str, LockCommand | None, AccessCode | None]:
    lock = _lock_for(account, event)
    if event.kind in (EventKind.DEVICE_ONLINE, EventKind.DEVICE_OFFLINE, EventKind.BATTERY):
        if lock is None:
            return f"{event.kind}: unknown device", None, None
        with transaction.atomic():
            lock_observe_device(
                lock=lock, now=now,
                online={EventKind.DEVICE_ONLINE: True, EventKind.DEVICE_OFFLINE: False}.get(event.kind),
                battery_level=event.battery_level,
            )
        return f"{event.kind}: {lock.name}", None, None
    if event.kind in SUCCESS_KINDS or event.kind in FAILURE_KINDS:
        return _apply_outcome(account, lock, event, now=now)
    if event.kind in (EventKind.CODE_USED, EventKind.CODE_DENIED):
        return _apply_arrival(lock, event, now=now)
    if event.kind in (EventKind.CODE_CHANGED_EXTERNALLY, EventKind.CODES_CLEARED) and lock is not None:
        if not lock_request_reconcile(lock=lock, now=now, news_at=event.occurred_at):
            return f"{event.kind}: answered by a newer read", None, None
        return f"{event.kind}: reconcile requested", None, None
    if event.kind in PERSON_NEEDED_APPLIERS:
        return PERSON_NEEDED_APPLIERS[event.kind](account, lock, event, now), None, None
    return f"{event.kind}: ignored", None, None


def _apply_arrival(
    lock: Lock | None, event: VendorEvent, *, now: datetime
) -> tuple[str, LockCommand | None, AccessCode | None]:
    """Someone used a code at the door: its first use (an arrival), or a wrong code tried."""
    if lock is None:
        return f"{event.kind}: unknown device", None, None
    if event.kind == EventKind.CODE_DENIED:
        code_record_denied(lock=lock, vendor_code_ref=event.vendor_code_ref, detail=event.detail, now=now)
        return f"{event.kind}: wrong code tried at {lock.name}", None, None
    code = code_record_use(lock=lock, vendor_code_ref=event.vendor_code_ref, occurred_at=event.occurred_at, now=now)
    if code is None:
        return f"{event.kind}: not a code of ours", None, None
    return f"{event.kind}: code {code.pk} used", None, code


# A device condition the vendor reports → the issue it opens (and its all-clear resolves).
CONDITION_ISSUES: dict[str, str] = {
    DeviceCondition.KEYPAD_DISCONNECTED: IssueKind.KEYPAD_DISCONNECTED,
    DeviceCondition.TAMPERED: IssueKind.DEVICE_TAMPERED,
    DeviceCondition.THIRD_PARTY_INTEGRATION: IssueKind.THIRD_PARTY_INTEGRATION,
    DeviceCondition.SUBSCRIPTION_REQUIRED: IssueKind.SUBSCRIPTION_REQUIRED,
}


def _apply_condition(account: ProviderAccount, lock: Lock | None, event: VendorEvent, now: datetime) -> str:
    kind = CONDITION_ISSUES.get(event.condition)
    if lock is None or kind is None:
        return f"{event.kind} {event.condition}: unknown device"
    if event.kind == EventKind.DEVICE_CONDITION:
        issue_open(lock=lock, code=None, kind=kind, now=now, detail=event.detail or event.raw_type)
        return f"{event.kind}: {kind} issue on {lock.name}"
    issues_resolve(lock=lock, code=None, kinds=[kind], now=now, why=event.detail or "the vendor's all-clear")
    return f"{event.kind}: {kind} resolved on {lock.name}"


def _apply_unmanaged_code(account: ProviderAccount, lock: Lock | None, event: VendorEvent, now: datetime) -> str:
    """A code appeared on the lock outside Lockstep: say so now, and read the lock, whose reading fills in
    what a person needs to decide (name, PIN where readable) or resolves the issue if it is gone."""
    if lock is None:
        return f"{event.kind}: unknown device"
    known = LockIssue.objects.filter(lock=lock, access_code=None, kind=IssueKind.UNMANAGED_CODE,
                                     status=IssueStatus.OPEN).first()
    codes = list((known.data if known else {}).get("codes", []))
    ours = AccessCode.objects.filter(lock=lock, vendor_code_ref=event.vendor_code_ref).exclude(
        status=CodeStatus.REMOVED)
    if event.vendor_code_ref and ours.exists():
        return f"{event.kind}: code {event.vendor_code_ref} is managed here already"
    if event.vendor_code_ref and all(item.get("vendor_code_ref") != event.vendor_code_ref for item in codes):
        codes.append({"vendor_code_ref": event.vendor_code_ref, "name": "", "pin_token": ""})
    issue_open(lock=lock, code=None, kind=IssueKind.UNMANAGED_CODE, now=now,
               detail=event.detail or "A code was added on the lock outside Lockstep", data={"codes": codes})
    lock_queue_read(lock=lock, now=now)
    return f"{event.kind}: unmanaged_code issue, read queued"


def _apply_account_disconnected(
    account: ProviderAccount, lock: Lock | None, event: VendorEvent, now: datetime
) -> str:
    """The vendor login behind the devices stopped working: a person reconnects the account; the lock
    itself is fine, so this is `auth_failed` on the account (every lock shows it), not "lock offline"."""
    account_flag_disconnected(account=account, detail=event.detail, now=now)
    return f"{event.kind}: account flagged, reconnect the account"


PERSON_NEEDED_APPLIERS: dict[str, Callable[[ProviderAccount, Lock | None, VendorEvent, datetime], str]] = {
    EventKind.DEVICE_CONDITION: _apply_condition,
    EventKind.DEVICE_CONDITION_CLEARED: _apply_condition,
    EventKind.UNMANAGED_CODE: _apply_unmanaged_code,
    EventKind.ACCOUNT_DISCONNECTED: _apply_account_disconnected,
}


def _apply_outcome(
    account: ProviderAccount, lock: Lock | None, event: VendorEvent, *, now: datetime
) -> tuple[str, LockCommand | None, AccessCode | None]:
    failed = event.kind in FAILURE_KINDS
    command = _correlate(account, lock, event, None if failed else SUCCESS_KINDS[event.kind])
    if command is not None:
        code = command.access_code
        if failed:
            reason = event.reason or Reason.VENDOR_ERROR
            clash = event.clash_code_ref
            # "slot 1 failed" while we are setting slot 2: the PIN we sent clashes with slot 1.
            other_slot = lock is not None and code is not None and _names_another_code(lock, command, event)
            if event.kind == EventKind.CODE_FAILED and (clash or other_slot):
                reason = Reason.DUPLICATE_PIN
                clash = clash or event.vendor_code_ref
            outcome = Outcome(Progress.FAILED, reason=reason, clash_code_ref=clash, detail=event.detail)
        else:
            outcome = Outcome(Progress.DONE, vendor_code_ref=_own_ref(command, event), detail=event.detail)
        done = command_complete(command=command, outcome=outcome, now=now, source="webhook")
        return f"{event.kind}: command {command.pk} {'completed' if done else 'already settled'}", command, code
    return _apply_to_code(account, lock, event, now=now)


def _active_early(code: AccessCode, event: VendorEvent) -> bool:
    """The lock says the code is active further ahead of its start than a vendor's rounding explains."""
    at = event.occurred_at
    return at is not None and code.starts_at is not None and at < code.starts_at - WINDOW_ROUNDING


def _own_ref(command: LockCommand, event: VendorEvent) -> str:
    code = command.access_code
    if code is not None and code.vendor_code_ref and event.vendor_code_ref != code.vendor_code_ref:
        return code.vendor_code_ref
    return event.vendor_code_ref


def _apply_to_code(
    account: ProviderAccount, lock: Lock | None, event: VendorEvent, *, now: datetime
) -> tuple[str, LockCommand | None, AccessCode | None]:
    """No command in flight matches: the event is about a code's life on the lock (or late)."""
    if lock is None or not event.vendor_code_ref:
        return f"{event.kind}: no match", None, None
    code = (
        AccessCode.objects.select_related("lock", "tenant")
        .filter(lock=lock, vendor_code_ref=event.vendor_code_ref).exclude(status=CodeStatus.REMOVED)
        .order_by("-id").first()
    )
    if code is None:
        return f"{event.kind}: no live code", None, None
    window_started = code.starts_at is None or code.starts_at <= now
    if event.kind == EventKind.CODE_SET and code.status == CodeStatus.UNSET and code.is_scheduled_on_device \
            and window_started:
        code_activate_scheduled(code=code, now=now)
        return f"{event.kind}: code {code.pk} active", None, code
    if event.kind == EventKind.CODE_SET and code.status == CodeStatus.UNSET and code.is_scheduled_on_device \
            and _active_early(code, event):
        # The lock opens for the code well before the window we sent: it holds another window (a moved stay
        # whose update the vendor called done). The read compares windows and sends ours again.
        lock_request_reconcile(lock=lock, now=now, news_at=event.occurred_at)
        return f"{event.kind}: code {code.pk} active on the lock before its window, lock read requested", None, code
    if event.kind in FAILURE_KINDS and code_report_failure(
        code=code, reason=event.reason, detail=event.detail, now=now
    ):
        return f"{event.kind}: code {code.pk} failed on the lock", None, code
    if event.kind == EventKind.CODE_REMOVED and code.status in (CodeStatus.SET, CodeStatus.SETTING):
        if not lock_request_reconcile(lock=lock, now=now, news_at=event.occurred_at):
            return f"{event.kind}: code {code.pk} reported gone, answered by a newer read", None, code
        return f"{event.kind}: code {code.pk} gone unexpectedly, reconcile requested", None, code
    return f"{event.kind}: code {code.pk} unchanged", None, code
