"""`manage.py simulate_qcluster`: django-q2's `qcluster`, on the shared virtual clock of a simulation.

Started by `manage.py simulate --workers K` (never by hand): the environment names the run's state
directory (`LOCKSTEP_SIM_STATE`), which holds the clock file. The cluster is the real one — same broker,
same task functions, same worker processes — with two differences: time comes from the shared clock, and
django-q's scheduler is off (and an idle pusher polls faster), because the simulate process enqueues the schedules at their virtual times
(at one real minute per schedule run, a simulated fortnight would take a fortnight). Each task the
simulate process enqueued for a step leaves a marker file when a worker has finished it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from locks.management.simulation.clock import clock_follow

STATE_ENV = "LOCKSTEP_SIM_STATE"
# The run's own queue: another run (or a real cluster) on the same Redis never takes its tasks. (django-q's
# Q_CLUSTER_NAME would want an ALT_CLUSTERS table in the settings.)
CLUSTER_ENV = "LOCKSTEP_SIM_CLUSTER"
STEP_TASK_PREFIX = "simstep-"


class Command(BaseCommand):
    help = "Run a qcluster on the shared virtual clock of a `simulate --workers` run (started by simulate)."

    def handle(self, *args: Any, **options: Any) -> None:
        from django_q.conf import Conf
        from django_q.signals import post_execute_in_worker

        state = os.environ.get(STATE_ENV)
        if not state or not (Path(state) / "clock").exists():
            raise CommandError(f"{STATE_ENV} must name a simulation's state directory (with its clock file)")
        done = Path(state) / "done"
        clock_follow(Path(state) / "clock")
        Conf.SCHEDULER = False
        # An idle pusher polls the ORM broker every `poll` seconds; at production's 0.5 s that pause, not the
        # engine, would set the pace of a compressed run.
        Conf.POLL = min(float(Conf.POLL), 0.02)
        Conf.CLUSTER_NAME = os.environ.get(CLUSTER_ENV) or Conf.CLUSTER_NAME

        def mark_done(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
            name = str(task.get("name") or "")
            if name.startswith(STEP_TASK_PREFIX):
                (done / name).touch()

        post_execute_in_worker.connect(mark_done, weak=False, dispatch_uid="simulate.mark_done")
        call_command("qcluster")
