"""django-q2 entry points (DESIGN §6). Thin: take ids, re-fetch, call a service with the current time.
A broker may deliver twice; every service here is idempotent."""

from __future__ import annotations

from django.utils import timezone

from locks import dispatch, reconcile, services
from locks import sweep as sweeper
from locks import tick as ticker
from locks.models import Lock


def _enqueue(func: str, *args: object) -> None:
    from django_q.tasks import async_task

    async_task(func, *args)


def tick() -> str:
    report = ticker.tick(now=timezone.now(), dispatch=lambda lock_id: _enqueue("locks.tasks.dispatch_lock", lock_id))
    return (f"programmed {report.programmed}, activated {report.activated}, removed {report.removed}, "
            f"dispatching {report.dispatched_locks} lock(s)")


def sweep() -> str:
    report = sweeper.sweep(now=timezone.now())
    return f"polled {report.polled}, completed {report.completed}, timed out {report.timed_out}"


def dispatch_lock(lock_id: int) -> int:
    return dispatch.dispatch_lock(lock_id=lock_id, now=timezone.now())


def reconcile_lock(lock_id: int) -> None:
    lock = Lock.objects.select_related("provider_account").filter(pk=lock_id).first()
    if lock is not None:
        reconcile.lock_reconcile(lock=lock, now=timezone.now())


def reconcile_due() -> int:
    lock_ids = reconcile.locks_due_for_reconcile(now=timezone.now())
    for lock_id in lock_ids:
        _enqueue("locks.tasks.reconcile_lock", lock_id)
    return len(lock_ids)


def health() -> int:
    from providers.models import ProviderAccount

    accounts = ProviderAccount.objects.filter(locks__isnull=False).distinct()
    for account in accounts:
        services.account_check_health(account=account, now=timezone.now())
    return len(accounts)
