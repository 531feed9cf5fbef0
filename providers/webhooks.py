"""Webhook intake (DESIGN §8): verify the raw body, store the delivery once (a repeat is dropped),
enqueue its processing on commit. Fast and dumb on purpose: what an event means for a command or a code
is the engine's business (`locks.outcomes`), which reads the stored delivery back through
`webhook_events`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from providers import webhook_store
from providers.base import Provider, ProviderError, VendorEvent, WebhookReply
from providers.models import ProviderAccount, WebhookEvent
from providers.oauth import InstalledApp, token_keeper
from providers.registry import get_provider

logger = logging.getLogger(__name__)


class WebhookRejected(Exception):
    """The delivery is not acceptable. `status` is the HTTP answer: 401 unsigned/forged, 400 malformed."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class IngestResult:
    event: WebhookEvent | None
    created: bool
    reply: WebhookReply | None = None


# Intake looks its account up on every delivery; each process keeps what it read for this long. A secret
# rotated on the account's page is honoured at once: the save clears this process's copy, and another
# process whose copy fails a delivery's signature reads the account again before refusing. The one cost:
# a process that has not seen the rotation still accepts the old secret for up to this many seconds.
ACCOUNT_CACHE_SECONDS = 30.0
_accounts: dict[tuple[str, UUID], tuple[float, ProviderAccount]] = {}


def webhook_receive(*, vendor: str, account_uuid: UUID, body: bytes, headers: Mapping[str, str]) -> IngestResult | None:
    """A delivery to /webhooks/<vendor>/<uuid>/: None when there is no such endpoint, else `webhook_ingest`."""
    account, cached = _webhook_account(vendor=vendor, account_uuid=account_uuid)
    if account is None:
        return None
    try:
        return webhook_ingest(account=account, body=body, headers=headers)
    except WebhookRejected as exc:
        if exc.status != 401 or not cached:
            raise
    # Signed with a secret this process may not know yet (rotated in another process): ask the database.
    account, _ = _webhook_account(vendor=vendor, account_uuid=account_uuid, fresh=True)
    if account is None:
        return None
    return webhook_ingest(account=account, body=body, headers=headers)


def _webhook_account(*, vendor: str, account_uuid: UUID, fresh: bool = False) -> tuple[ProviderAccount | None, bool]:
    """The account of a webhook endpoint, and whether it came from this process's cache."""
    key = (vendor, account_uuid)
    now = time.monotonic()
    held = None if fresh else _accounts.get(key)
    if held is not None and now - held[0] < ACCOUNT_CACHE_SECONDS:
        return held[1], True
    account = ProviderAccount.objects.filter(uuid=account_uuid, vendor=vendor).first()
    if account is None:
        _accounts.pop(key, None)
        return None, False
    if len(_accounts) > 10_000:  # bounded: far more accounts than one deployment serves
        _accounts.clear()
    _accounts[key] = (now, account)
    return account, False


def webhook_account_forget(*, account_uuid: UUID) -> None:
    """Drop this process's copy of an account (it was saved or deleted here; see ACCOUNT_CACHE_SECONDS)."""
    for key in [key for key in _accounts if key[1] == account_uuid]:
        _accounts.pop(key, None)


def webhook_ingest(*, account: ProviderAccount, body: bytes, headers: Mapping[str, str]) -> IngestResult:
    """Verify, store once, enqueue. Raises WebhookRejected; nothing is stored for a rejected delivery."""
    from providers.base import WebhookVerificationError

    provider = get_provider(account)
    try:
        reply = provider.webhook_reply(body, headers)
    except ProviderError as exc:
        # A lifecycle we could not act on (SmartThings INSTALL whose subscriptions failed): the vendor
        # sees a failure and the user retries the install; the reason stays in our log.
        logger.warning("account %s: lifecycle not completed: %s", account.pk, exc.vendor_detail or exc.reason)
        raise WebhookRejected(502, "the lifecycle could not be completed") from exc
    if reply is not None:
        keeper = token_keeper()
        if isinstance(reply.installed, InstalledApp) and keeper is not None:
            # The account may come from the intake's cache: record on the row as it is now.
            keeper.installed_app_record(ProviderAccount.objects.get(pk=account.pk), reply.installed)
        return IngestResult(event=None, created=False, reply=reply)
    try:
        provider.verify_webhook(body, headers)
    except WebhookVerificationError as exc:
        raise WebhookRejected(401, str(exc) or "bad signature") from exc
    try:
        payload = json.loads(body)
        events = provider.parse_webhook(body, headers)
        event_id = _event_id(provider, body, headers, events) or hashlib.sha256(body).hexdigest()
    except (ValueError, KeyError, TypeError, WebhookVerificationError) as exc:
        raise WebhookRejected(400, f"malformed webhook: {exc}") from exc
    safe_headers = {k: v for k, v in headers.items() if k.lower() not in {"authorization", "cookie"}}
    event = WebhookEvent(provider_account=account, vendor_event_id=event_id[:200], received_at=timezone.now(),
                         payload=payload, headers=safe_headers)
    try:
        if events and connection.vendor == "postgresql" and not _tasks_run_inline():
            shared = _broker_shares_our_transaction()
            created = webhook_store.event_and_task_insert(event, task=_task_package if shared else None)
            if created and not shared:  # Redis: pushed once the event is committed
                pk = event.pk
                transaction.on_commit(lambda: _enqueue(pk))
        else:
            created = _store(event, parsed=bool(events))
    except IntegrityError:
        created = False
    if not created:
        existing = WebhookEvent.objects.filter(provider_account=account, vendor_event_id=event_id[:200]).first()
        return IngestResult(event=existing, created=False)
    return IngestResult(event=event, created=True)


def _event_id(provider: Provider, body: bytes, headers: Mapping[str, str], events: list[VendorEvent]) -> str:
    """The vendor's delivery id, from the events already parsed unless the adapter reads it elsewhere."""
    if type(provider).webhook_event_id is Provider.webhook_event_id:
        return events[0].vendor_event_id if events else ""
    return provider.webhook_event_id(body, headers)


def _store(event: WebhookEvent, *, parsed: bool) -> bool:
    """The event and its processing task through the ORM (SQLite, tests' inline tasks, or a delivery we
    could not read)."""
    with transaction.atomic():
        _relax_commit_durability()
        event.save(force_insert=True)
        if not parsed:
            _count_unparsed(event.provider_account, now=event.received_at)
        if _broker_shares_our_transaction():
            _enqueue(event.pk)  # the task row commits with the event: one commit, never one without the other
        else:
            pk = event.pk
            transaction.on_commit(lambda: _enqueue(pk))
    return True


def _count_unparsed(account: ProviderAccount, *, now: datetime) -> None:
    """Verified, yet nothing in it we can read (a shape we do not know): stored like any delivery and
    counted on the account, whose page shows it and whose admins are alerted (DESIGN §4)."""
    ProviderAccount.objects.filter(pk=account.pk).update(
        unparsed_deliveries=F("unparsed_deliveries") + 1, last_unparsed_at=now
    )


def _relax_commit_durability() -> None:
    """Intake answers fast (DESIGN §12: at least half a bare view's throughput); a durable commit costs
    a WAL flush (10–20 ms here) per delivery. With `synchronous_commit = off` for this one transaction a
    database crash can lose the last few hundred milliseconds of acknowledged deliveries, never corrupt
    anything; a lost delivery is what the sweeper and reconciliation already repair (DESIGN §4:
    "a lost webhook ... is repaired by the next sweep or reconciliation")."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _tasks_run_inline() -> bool:
    from django_q.conf import Conf

    return bool(Conf.SYNC)


def _broker_shares_our_transaction() -> bool:
    """The ORM broker on our own database: enqueueing inside the transaction is atomic with the event.
    (Tests run tasks inline with sync=True; those must run after commit, as a worker would.)"""
    from django_q.conf import Conf

    return Conf.ORM == DEFAULT_DB_ALIAS and not Conf.SYNC


def _enqueue(event_id: int) -> None:
    from django_q.tasks import async_task

    async_task("locks.tasks.process_event", event_id, broker=_broker())


def _task_package(event_id: int) -> str:
    """The signed django-q package of the processing task, built as `async_task` builds it (django_q/tasks.py,
    for a task without options), without pushing it — and without its "Enqueued" log record, which cost
    more than the package (tests/providers/test_webhook_fast_path.py keeps the two alike)."""
    from django_q.conf import Conf
    from django_q.humanhash import uuid
    from django_q.signals import pre_enqueue
    from django_q.signing import SignedPackage

    name, task_id = uuid()
    task: dict[str, Any] = {"id": task_id, "name": name, "func": "locks.tasks.process_event", "args": (event_id,)}
    if Conf.CACHED:
        task["cached"] = Conf.CACHED
    if Conf.SYNC:
        task["sync"] = Conf.SYNC
    if Conf.ACK_FAILURES:
        task["ack_failure"] = Conf.ACK_FAILURES
    task["kwargs"] = {}
    task["started"] = timezone.now()
    pre_enqueue.send(sender="django_q", task=task)
    return str(SignedPackage.dumps(task))


_brokers: dict[int, Any] = {}


def _broker() -> Any:
    """One django-q broker per process (django-q makes a new one, and on Redis a new connection, per task)."""
    from django_q.brokers import get_broker

    pid = os.getpid()
    if pid not in _brokers:
        _brokers.clear()
        _brokers[pid] = get_broker()
    return _brokers[pid]


def webhook_enqueue_again(*, event_id: int) -> None:
    """Enqueue a stored event's processing again (the sweep, for an event whose task was lost). The
    event row is long committed, so no need to wait for the caller's commit; processing is idempotent,
    so a task that was merely slow costs nothing."""
    _enqueue(event_id)


def webhook_events(*, account: ProviderAccount, payload: Any, headers: Mapping[str, str]) -> list[VendorEvent]:
    """The normalized events of a stored delivery (verified when it was received)."""
    return get_provider(account).parse_webhook(json.dumps(payload).encode(), headers)
