"""The minute tick (DESIGN §6): program due codes, start preloaded windows, remove ended codes, dispatch.

Every query here rides a partial index (`code_due_program`, `code_due_remove`,
`command_queue_per_lock`) so its cost follows what is due, not how much history there is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from locks import services
from locks.dispatch import dispatch_lock, locks_with_ready_commands
from locks.models import AccessCode, CodeStatus, IssueStatus

BATCH = 500  # codes per step and run; the next tick continues where this one stopped


@dataclass
class TickReport:
    programmed: int = 0
    activated: int = 0
    removed: int = 0
    flagged_late: int = 0
    dispatched_locks: int = 0


def tick(*, now: datetime, dispatch: Callable[[int], object] | None = None) -> TickReport:
    """`dispatch(lock_id)` sends a lock's ready commands; by default right here, in order. The task
    passes one that enqueues, so many workers share the vendor calls."""
    report = TickReport()
    # Both steps are status=unset AND program_at <= now: the code_due_program partial index.
    due = AccessCode.objects.select_related("lock", "tenant").filter(
        status=CodeStatus.UNSET, program_at__lte=now, is_scheduled_on_device=False
    ).exclude(ends_at__lte=now).order_by("program_at")[:BATCH]
    for code in due:
        report.programmed += services.code_program(code=code, now=now, dispatch=False)
    started = AccessCode.objects.select_related("lock", "tenant").filter(
        status=CodeStatus.UNSET, program_at__lte=now, is_scheduled_on_device=True, starts_at__lte=now
    ).order_by("program_at")[:BATCH]
    for code in started:
        report.activated += services.code_activate_scheduled(code=code, now=now)
    # Codes whose window began while they are still being set: an issue now, not a surprise at the door.
    # Only codes in motion qualify (few), and one that already carries an open issue is skipped.
    late = (
        AccessCode.objects.select_related("lock").filter(status=CodeStatus.SETTING, starts_at__lte=now, ends_at__gt=now)
        .exclude(issues__status=IssueStatus.OPEN)
        .order_by("starts_at")[:BATCH]
    )
    for code in late:
        if services.code_flag_late(code=code, now=now) is not None:
            report.flagged_late += 1
    # status in (unset, setting, set) AND ends_at <= now: the code_due_remove partial index.
    ended = AccessCode.objects.select_related("lock", "tenant").filter(
        status__in=[CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET], ends_at__lte=now
    ).order_by("ends_at")[:BATCH]
    for code in ended:
        services.code_remove(code=code, now=now, note="window ended")
        report.removed += 1
    for lock_id in locks_with_ready_commands(now=now):
        if dispatch is None:
            dispatch_lock(lock_id=lock_id, now=now)
        else:
            dispatch(lock_id)
        report.dispatched_locks += 1
    return report
