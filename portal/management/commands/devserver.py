"""`make run`: the web server and one worker side by side; Ctrl-C stops both, cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

MANAGE = str(Path(__file__).resolve().parents[3] / "manage.py")
GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Run the web server (runserver) and one django-q2 worker (qcluster) together; Ctrl-C stops both."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, addrport: str, **options: Any) -> None:
        children = [
            subprocess.Popen([sys.executable, MANAGE, "qcluster"]),  # noqa: S603 - our own manage.py
            subprocess.Popen([sys.executable, MANAGE, "runserver", addrport]),  # noqa: S603 - our own manage.py
        ]
        # A terminal's Ctrl-C reaches every process of the foreground group (the children too); a TERM sent
        # to this process alone is passed on. Either way, the children get time to stop on their own.
        signal.signal(signal.SIGTERM, lambda *_: _signal_all(children, signal.SIGINT))
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            _stop(children)
        self.stdout.write("Web server and worker stopped.")


def _signal_all(children: list[subprocess.Popen[bytes]], signum: int) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signum)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()) / 2)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGINT)
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
