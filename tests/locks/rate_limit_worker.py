"""One dispatcher process for tests/locks/test_rate_limits.py: dispatches one lock on a shared virtual
clock until every code is sent or the clock runs out.

    python -m tests.locks.rate_limit_worker <lock_id> <wall_start> <speed> <store> <redis_url>
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import Any

from providers.base import Progress, Provider, ProviderError, Reason, Receipt

LIMIT = 10  # Seam: 10 creates a minute per device


class CountingSeam(Provider):
    """A Seam that refuses (429) the 11th create within any minute on one device, counted across
    processes in the shared database (what each command was sent at, on the shared virtual clock)."""

    vendor = "seam"

    def check_connection(self) -> None:
        return None

    def list_devices(self) -> list[Any]:
        return []

    def create_code(self, lock: Any, code: Any) -> Receipt:
        from locks.models import CommandAction, LockCommand

        mine = LockCommand.objects.get(access_code=code, state="sent")
        recent = LockCommand.objects.filter(
            lock=lock, action=CommandAction.CREATE, sent_at__gt=mine.sent_at - timedelta(seconds=60),
            sent_at__lte=mine.sent_at, state__in=["sent", "succeeded"],
        ).count()
        if recent > LIMIT:
            raise ProviderError(Reason.RATE_LIMITED, "Too many requests", retry_after=60, status_code=429)
        return Receipt(Progress.DONE, vendor_ref=f"aa-{code.pk}", vendor_code_ref=f"ac-{code.pk}",
                       request_summary={"pid": os.getpid()})

    def update_code(self, lock: Any, code: Any) -> Receipt:
        raise NotImplementedError

    def delete_code(self, lock: Any, code: Any) -> Receipt:
        raise NotImplementedError

    def command_status(self, lock: Any, command: Any) -> Any:
        raise NotImplementedError

    def read_codes(self, lock: Any) -> None:
        return None

    def verify_webhook(self, body: bytes, headers: Any) -> None:
        raise NotImplementedError

    def parse_webhook(self, body: bytes, headers: Any) -> list[Any]:
        raise NotImplementedError


def main(lock_id: int, wall_start: float, speed: float, store: str, redis_url: str) -> None:
    import django

    django.setup()
    from django.test import override_settings

    from locks.dispatch import dispatch_lock
    from locks.models import CommandState, LockCommand
    from providers import registry
    from tests.locks.conftest import T0

    registry.ADAPTERS["seam"] = "tests.locks.rate_limit_worker.CountingSeam"
    with override_settings(RATE_LIMIT_STORE=store, REDIS_URL=redis_url):
        while True:
            now = T0 + timedelta(seconds=(time.time() - wall_start) * speed)
            if now > T0 + timedelta(minutes=30):  # an ample horizon: a loaded machine is slow, not wrong
                break
            if not LockCommand.objects.filter(lock_id=lock_id, state=CommandState.QUEUED).exists():
                break
            dispatch_lock(lock_id=lock_id, now=now)
            time.sleep(0.05)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5])
