"""The `qcluster` processes of a multi-worker simulation: one process group each, killed and restarted.

Each cluster is started in a new session, so it is its own process group (pgid = its leader's pid): a
cluster is a leader (`simulate_qcluster`), a sentinel, a pusher, a monitor and its worker processes.
Killing by process group reaches all of them, including children a killed leader left behind — which is
exactly what a killed parent does in production too (its children keep running and keep taking tasks).
Every group ever started is remembered and SIGKILLed on the way out, whatever the way out is.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

KILL_KINDS = ("worker", "parent", "fleet")
KILL_WEIGHTS = (5, 3, 2)


@dataclass
class Cluster:
    process: subprocess.Popen[bytes]

    @property
    def pgid(self) -> int:
        return self.process.pid


@dataclass
class Clusters:
    count: int
    env: dict[str, str]
    log_dir: Path
    rng: random.Random
    clusters: list[Cluster] = field(default_factory=list)
    pgids: list[int] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    stalls: int = 0

    def start(self) -> None:
        while len(self.clusters) < self.count:
            self.clusters.append(self._spawn())

    def _spawn(self) -> Cluster:
        log = open(self.log_dir / f"qcluster-{len(self.pgids) + 1}.log", "ab")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py, no outside input
            [sys.executable, str(Path(__file__).resolve().parents[3] / "manage.py"), "simulate_qcluster"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        self.pgids.append(process.pid)
        return Cluster(process)

    def kill_some(self) -> str:
        """SIGKILL a worker process, a cluster's leader, or the whole fleet; restart what must be."""
        kind = self.rng.choices(KILL_KINDS, weights=KILL_WEIGHTS)[0]
        victim = self.rng.choice(self.clusters)
        if kind == "worker":
            # Workers, pusher and monitor are the sentinel's children; the sentinel brings a dead one back.
            grandchildren = [pid for pid, ppid in group_members(victim.pgid).items()
                             if pid != victim.pgid and ppid != victim.pgid]
            if not grandchildren:
                kind = "parent"
            else:
                _signal(self.rng.choice(sorted(grandchildren)), signal.SIGKILL)
        if kind == "parent":
            _signal(victim.pgid, signal.SIGKILL)
            victim.process.wait()
            self._restart(victim)
        elif kind == "fleet":
            for cluster in list(self.clusters):
                self._restart(cluster)
        self.kills[kind] += 1
        return kind

    def restart_dead(self) -> None:
        """A leader that died (killed, crashed) is restarted, its process group cleared first."""
        for cluster in list(self.clusters):
            if cluster.process.poll() is not None:
                self._restart(cluster)

    def restart_stalled(self) -> None:
        """A SIGKILLed process may die holding the lock of a cluster's internal task or result queue; its
        siblings then wait on that lock forever (a wedged cluster). We cannot tell which cluster it is from
        outside, so a step whose tasks do not finish restarts them all."""
        self.stalls += 1
        for cluster in list(self.clusters):
            self._restart(cluster)

    def _restart(self, cluster: Cluster) -> None:
        _killpg(cluster.pgid, signal.SIGKILL)
        cluster.process.wait()
        self.clusters[self.clusters.index(cluster)] = self._spawn()
        self.restarts += 1

    def stop(self, *, grace: float = 5.0) -> None:
        """Ask every group to stop (django-q finishes the task at hand), then SIGKILL what is left."""
        for pgid in self.pgids:
            _killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.1)
        for pgid in self.pgids:
            _killpg(pgid, signal.SIGKILL)
        for cluster in self.clusters:
            with contextlib.suppress(subprocess.TimeoutExpired):
                cluster.process.wait(timeout=grace)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.1)

    def alive(self) -> list[int]:
        """Processes of any group this run started that still exist (zombies excluded)."""
        return sorted(pid for pgid in self.pgids for pid in group_members(pgid))


def group_members(pgid: int) -> dict[int, int]:
    """{pid: parent pid} of the live processes in process group `pgid` (Linux /proc)."""
    members: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the fields after it are plain.
        fields = stat[stat.rindex(")") + 2:].split()
        state, ppid, pgrp = fields[0], int(fields[1]), int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            members[int(entry.name)] = ppid
    return members


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _killpg(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
