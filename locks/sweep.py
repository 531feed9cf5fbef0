"""The sweeper (DESIGN §4): commands left `sent` too long are asked about, completed or timed out.

Webhooks go missing; the sweeper is what makes a lost one harmless. Its query rides the partial index
`command_sent_since` (state = sent), so it costs what is stale, not what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from locks import services
from locks.dispatch import dispatch_lock
from locks.models import CommandState, LockCommand
from providers.base import ProviderError

BATCH = 200


@dataclass
class SweepReport:
    polled: int = 0
    completed: int = 0
    timed_out: int = 0


def sweep(*, now: datetime) -> SweepReport:
    report = SweepReport()
    stale_before = now - timedelta(minutes=services.engine_setting("SWEEP_STALE_MINUTES"))
    hard_before = now - timedelta(minutes=services.engine_setting("SWEEP_HARD_LIMIT_MINUTES"))
    stale = (
        LockCommand.objects.select_related("lock__provider_account", "access_code__lock")
        .filter(state=CommandState.SENT, sent_at__lt=stale_before)
        .order_by("sent_at")[:BATCH]
    )
    for command in stale:
        report.polled += 1
        unresolved = command_poll(command=command, now=now)
        report.completed += not unresolved
        if unresolved and command.sent_at < hard_before and services.command_time_out(command=command, now=now):
            report.timed_out += 1
        dispatch_lock(lock_id=command.lock_id, now=now)
    return report


def command_poll(*, command: LockCommand, now: datetime) -> bool:
    """Ask the vendor about a command in flight and complete it if the answer is final. True when it is
    still unresolved afterwards."""
    from providers.registry import get_provider

    try:
        outcome = get_provider(command.lock.provider_account).command_status(command.lock, command)
    except ProviderError as exc:
        services.activity_record(
            tenant_id=command.tenant_id, verb="command.poll_failed", message=f"Status poll failed: {exc}",
            now=now, command=command, code=command.access_code,
        )
        return True
    return not services.command_complete(command=command, outcome=outcome, now=now, source="sweep")
