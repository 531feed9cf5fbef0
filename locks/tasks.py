"""django-q2 entry points (DESIGN §6). Thin: take ids, re-fetch, call a service with the current time.
A broker may deliver twice; every service here is idempotent."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from locks import dispatch, fleet, outcomes, reconcile, tokens
from locks import sweep as sweeper
from locks import tick as ticker
from locks.models import Lock
from providers.models import ProviderAccount


def _enqueue(func: str, *args: object) -> None:
    from django_q.tasks import async_task

    async_task(func, *args)


def tick() -> str:
    report = ticker.tick(now=timezone.now(), dispatch=lambda lock_id: _enqueue("locks.tasks.dispatch_lock", lock_id))
    return (f"programmed {report.programmed}, activated {report.activated}, removed {report.removed}, "
            f"dispatching {report.dispatched_locks} lock(s)")


def sweep() -> str:
    report = sweeper.sweep(now=timezone.now())
    return (f"polled {report.polled}, completed {report.completed}, timed out {report.timed_out}, "
            f"events enqueued again {report.requeued_events}")


def dispatch_lock(lock_id: int) -> int:
    return dispatch.dispatch_lock(lock_id=lock_id, now=timezone.now())


def reconcile_due() -> int:
    """Queue a read on every lock due for reconciliation; the dispatcher reads and repairs."""
    now = timezone.now()
    lock_ids = reconcile.locks_due_for_reconcile(now=now)
    for lock in Lock.objects.filter(pk__in=lock_ids):
        with transaction.atomic():
            reconcile.lock_queue_read(lock=lock, now=now)
    return len(lock_ids)


def health() -> int:
    accounts = ProviderAccount.objects.filter(locks__isnull=False).distinct()
    for account in accounts:
        fleet.account_check_health(account=account, now=timezone.now())
    return len(accounts)


def refresh_tokens() -> int:
    """OAuth tokens that expire before the next run (DESIGN §6), each refreshed under its row lock."""
    return tokens.tokens_refresh_due(now=timezone.now())


def process_event(event_id: int) -> str:
    return outcomes.event_process(event_id=event_id, now=timezone.now())
