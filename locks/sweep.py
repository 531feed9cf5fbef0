"""The sweeper (DESIGN §4): commands left `sent` too long are asked about, completed or timed out, and
stored webhook events left unprocessed past a grace are enqueued again.

Webhooks go missing; the sweeper is what makes a lost one harmless. A status poll is a vendor call (rate
limits, a lock's battery), so a command still pending is asked again with a backoff — at 5, 10 and 20 minutes
old, then once at the hard limit before it times out — not every minute: each poll sets its `next_poll_at`.
Its query rides the partial index `command_poll_due` (state = sent), so it costs what is due, not what
exists. A stored event whose task died with a worker (the Redis broker loses what a killed worker held)
would otherwise stay unprocessed for good; its query rides `webhook_unprocessed` (processed_at is null)
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from locks.activity import activity_record
from locks.commands import command_complete, command_time_out
from locks.conf import engine
from locks.dispatch import dispatch_lock
from locks.models import CommandAction, CommandState, LockCommand
from providers.base import ProviderError
from providers.models import WebhookEvent
from providers.registry import get_provider
from providers.webhooks import webhook_enqueue_again

# Work the dispatcher finishes while it holds the claim: left `sent`, its worker died; nothing to ask.
ANSWERED_IN_PLACE = (CommandAction.READ_CODES, CommandAction.DELETE_ALL)


@dataclass
class SweepReport:
    polled: int = 0
    completed: int = 0
    timed_out: int = 0
    requeued_events: int = 0


def sweep(*, now: datetime) -> SweepReport:
    report = SweepReport()
    settings = engine()
    stale_before = now - timedelta(minutes=settings.SWEEP_STALE_MINUTES)
    hard_before = now - timedelta(minutes=settings.SWEEP_HARD_LIMIT_MINUTES)
    # Commands sent before next_poll_at was recorded are asked once stale, like before.
    due = Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True, sent_at__lt=stale_before)
    stale = (
        LockCommand.objects.select_related("lock__provider_account", "access_code__lock")
        .filter(due, state=CommandState.SENT)
        .order_by("sent_at")[:settings.SWEEP_BATCH]
    )
    for command in stale:
        if command.action in ANSWERED_IN_PLACE:
            report.timed_out += command_time_out(command=command, now=now,
                                                 detail="interrupted before it finished; ask again if needed")
            dispatch_lock(lock_id=command.lock_id, now=now)
            continue
        report.polled += 1
        unresolved = command_poll(command=command, now=now)
        report.completed += not unresolved
        sent_at = command.sent_at or now
        if unresolved and sent_at <= hard_before and command_time_out(command=command, now=now):
            report.timed_out += 1
        elif unresolved:
            command_poll_later(command=command, now=now)
        dispatch_lock(lock_id=command.lock_id, now=now)
    report.requeued_events = events_requeue(now=now)
    return report


def next_poll_time(*, sent_at: datetime, now: datetime) -> datetime:
    """When a command sent at `sent_at`, still pending at `now`, is asked again: once its age has grown by
    the backoff factor (at least a minute on), and never after the hard limit, where it is asked one last
    time before it times out."""
    settings = engine()
    age = max(now - sent_at, timedelta(minutes=settings.SWEEP_STALE_MINUTES))
    later = max(sent_at + age * settings.SWEEP_POLL_BACKOFF, now + timedelta(minutes=1))
    return min(later, sent_at + timedelta(minutes=settings.SWEEP_HARD_LIMIT_MINUTES))


def command_poll_later(*, command: LockCommand, now: datetime) -> None:
    """The command is still pending: ask again at its next poll time."""
    if command.sent_at is None:
        return
    when = next_poll_time(sent_at=command.sent_at, now=now)
    LockCommand.objects.filter(pk=command.pk, state=CommandState.SENT).update(next_poll_at=when)
    command.next_poll_at = when


def events_requeue(*, now: datetime) -> int:
    """Enqueue again every stored event left unprocessed past the grace, at most once per grace each (a
    slow worker's backlog does not get a task a minute piled on). Each is claimed with a conditional
    UPDATE, so two sweepers never both enqueue it. Returns how many were enqueued."""
    settings = engine()
    before = now - timedelta(seconds=settings.EVENT_REPROCESS_AFTER_SECONDS)
    due = Q(requeued_at__isnull=True) | Q(requeued_at__lte=before)
    stale = (
        WebhookEvent.objects.filter(processed_at__isnull=True, received_at__lte=before).filter(due)
        .order_by("received_at").values_list("pk", flat=True)[:settings.SWEEP_BATCH]
    )
    requeued = 0
    for event_id in list(stale):
        if WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True).filter(due).update(requeued_at=now):
            webhook_enqueue_again(event_id=event_id)
            requeued += 1
    return requeued


def command_poll(*, command: LockCommand, now: datetime) -> bool:
    """Ask the vendor about a command in flight and complete it if the answer is final. True when it is
    still unresolved afterwards."""
    try:
        outcome = get_provider(command.lock.provider_account).command_status(command.lock, command)
    except ProviderError as exc:
        activity_record(
            tenant_id=command.tenant_id, verb="command.poll_failed", message=f"Status poll failed: {exc}",
            now=now, command=command, code=command.access_code,
        )
        return True
    return not command_complete(command=command, outcome=outcome, now=now, source="sweep")
