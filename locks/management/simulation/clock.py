"""A virtual clock shared across processes: a file the simulate process writes and everyone else reads.

Why a file and not time-machine in the workers: the simulate process jumps the clock (minutes, hours)
while workers are in the middle of tasks. `django.utils.timezone.now` is replaced by a reader of the file
(one `stat` a call, re-read when the file changed), so every `timezone.now()` — the engine's, the models'
`auto_now`, the simulator's — follows the clock live, even inside a long task. All processes of a run are
on one machine (the simulate process starts them), so a file is the simplest shared store; the write is
atomic (`os.replace`). The time is frozen between writes, as in the in-process mode.

The one thing that must NOT follow it is the ORM broker: it stamps queued tasks with `timezone.now()` and
hands out those stamped before "now"; on a clock years ahead no worker would ever see a task, and a task
taken by a killed worker must come back after `retry` real seconds. So `django_q.brokers.orm` keeps the
real clock.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from django.utils import timezone

_REAL_NOW = timezone.now


def real_now() -> datetime:
    return datetime.now(UTC)


class SharedClock:
    """Read and write the virtual time kept in `path` (ISO 8601, UTC)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._value: datetime | None = None

    def set(self, moment: datetime) -> None:
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(moment.astimezone(UTC).isoformat())
        os.replace(temporary, self.path)

    def now(self) -> datetime:
        stat = os.stat(self.path)
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp != self._seen or self._value is None:
            self._value = datetime.fromisoformat(self.path.read_text())
            self._seen = stamp
        return self._value


def clock_follow(path: Path) -> SharedClock:
    """Make this process's `timezone.now()` the shared clock (and keep the ORM broker on real time).
    Processes forked afterwards (the cluster's sentinel, pusher, monitor and workers) inherit it."""
    from django_q.brokers import orm

    clock = SharedClock(path)
    timezone.now = clock.now
    orm.timezone = SimpleNamespace(now=real_now)
    return clock


def clock_restore() -> None:
    from django_q.brokers import orm

    timezone.now = _REAL_NOW
    orm.timezone = timezone

