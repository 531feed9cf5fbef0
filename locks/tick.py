"""The minute tick (DESIGN §6): program due codes, start preloaded windows, flag late codes, remove ended
codes, flag codes left on the lock past their end (overstay), flag guests not in yet (no entry), dispatch.

Every query here rides a partial index (`code_due_program`, `code_due_remove`,
`code_may_overstay`, `command_queue_per_lock`) so its cost follows what is due, not how much history there is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from locks.arrivals import bookings_flag_no_entry
from locks.backup import backup_pools_top_up
from locks.codes import code_activate_scheduled, code_flag_late, code_flag_overstay, codes_overstaying
from locks.conf import engine
from locks.dispatch import dispatch_lock, locks_with_ready_commands
from locks.models import AccessCode, CodeStatus, IssueStatus
from locks.planning import code_program, code_remove
from locks.selectors import codes_not_on_lock


@dataclass
class TickReport:
    programmed: int = 0
    activated: int = 0
    removed: int = 0
    flagged_late: int = 0
    flagged_overstay: int = 0
    backups_made: int = 0
    flagged_no_entry: int = 0
    dispatched_locks: int = 0


def tick(*, now: datetime, dispatch: Callable[[int], object] | None = None) -> TickReport:
    """`dispatch(lock_id)` sends a lock's ready commands; by default right here, in order. The task
    passes one that enqueues, so many workers share the vendor calls."""
    report = TickReport()
    batch = engine().TICK_BATCH
    # Both steps are status=unset AND program_at <= now: the code_due_program partial index.
    due = AccessCode.objects.select_related("lock", "tenant").filter(
        status=CodeStatus.UNSET, program_at__lte=now, is_scheduled_on_device=False
    ).exclude(ends_at__lte=now).order_by("program_at", "id")[:batch]
    for code in due:
        report.programmed += code_program(code=code, now=now, dispatch=False)
    started = AccessCode.objects.select_related("lock", "tenant").filter(
        status=CodeStatus.UNSET, program_at__lte=now, is_scheduled_on_device=True, starts_at__lte=now
    ).order_by("program_at", "id")[:batch]
    for code in started:
        report.activated += code_activate_scheduled(code=code, now=now)
    # Codes whose window began while they are still not on the lock (the attention rule with no look-ahead):
    # an issue now, not a surprise at the door. One that already carries an open issue is skipped.
    late = (
        codes_not_on_lock(AccessCode.objects.select_related("lock"), now=now, within=timedelta(0))
        .exclude(issues__status=IssueStatus.OPEN)
        .order_by("starts_at", "id")[:batch]
    )
    for code in late:
        if code_flag_late(code=code, now=now) is not None:
            report.flagged_late += 1
    # status in (unset, setting, set) AND ends_at <= now: the code_due_remove partial index.
    ended = AccessCode.objects.select_related("lock", "tenant").filter(
        status__in=[CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET], ends_at__lte=now
    ).order_by("ends_at", "id")[:batch]
    for code in ended:
        code_remove(code=code, now=now, note="window ended")
        report.removed += 1
    # Ended codes the lock may still hold past the grace: the guest's PIN may still open the door.
    for code in codes_overstaying(now=now, limit=batch):
        code_flag_overstay(code=code, now=now)
        report.flagged_overstay += 1
    # Spare codes ready on the locks that keep a backup pool (one handed out or ended: replaced).
    report.backups_made = backup_pools_top_up(now=now, limit=batch)
    # Guests not in yet N hours after check-in, on properties that asked to hear of it (once per stay).
    report.flagged_no_entry = bookings_flag_no_entry(now=now, limit=batch)
    for lock_id in locks_with_ready_commands(now=now):
        if dispatch is None:
            dispatch_lock(lock_id=lock_id, now=now)
        else:
            dispatch(lock_id)
        report.dispatched_locks += 1
    return report
