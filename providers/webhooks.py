"""Webhook intake (DESIGN §8): verify the raw body, store the delivery once (a repeat is dropped),
enqueue its processing on commit. Fast and dumb on purpose: what an event means for a command or a code
is the engine's business (`locks.outcomes`), which reads the stored delivery back through
`webhook_events`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from providers.base import ProviderError, VendorEvent, WebhookReply
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
            keeper.installed_app_record(account, reply.installed)
        return IngestResult(event=None, created=False, reply=reply)
    try:
        provider.verify_webhook(body, headers)
    except WebhookVerificationError as exc:
        raise WebhookRejected(401, str(exc) or "bad signature") from exc
    try:
        payload = json.loads(body)
        events = provider.parse_webhook(body, headers)
        event_id = provider.webhook_event_id(body, headers) or hashlib.sha256(body).hexdigest()
    except (ValueError, KeyError, TypeError, WebhookVerificationError) as exc:
        raise WebhookRejected(400, f"malformed webhook: {exc}") from exc
    safe_headers = {k: v for k, v in headers.items() if k.lower() not in {"authorization", "cookie"}}
    try:
        with transaction.atomic():
            _relax_commit_durability()
            event = WebhookEvent.objects.create(
                provider_account=account, vendor_event_id=event_id[:200], received_at=timezone.now(),
                payload=payload, headers=safe_headers,
            )
            if not events:
                _count_unparsed(account, now=event.received_at)
            if _broker_shares_our_transaction():
                _enqueue(event.pk)  # the task row commits with the event: one commit, never one without the other
            else:
                transaction.on_commit(lambda: _enqueue(event.pk))
    except IntegrityError:
        existing = WebhookEvent.objects.filter(provider_account=account, vendor_event_id=event_id[:200]).first()
        return IngestResult(event=existing, created=False)
    return IngestResult(event=event, created=True)


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


def _broker_shares_our_transaction() -> bool:
    """The ORM broker on our own database: enqueueing inside the transaction is atomic with the event.
    (Tests run tasks inline with sync=True; those must run after commit, as a worker would.)"""
    from django_q.conf import Conf

    return Conf.ORM == DEFAULT_DB_ALIAS and not Conf.SYNC


def _enqueue(event_id: int) -> None:
    from django_q.tasks import async_task

    async_task("locks.tasks.process_event", event_id)


def webhook_enqueue_again(*, event_id: int) -> None:
    """Enqueue a stored event's processing again (the sweep, for an event whose task was lost). The
    event row is long committed, so no need to wait for the caller's commit; processing is idempotent,
    so a task that was merely slow costs nothing."""
    _enqueue(event_id)


def webhook_events(*, account: ProviderAccount, payload: Any, headers: Mapping[str, str]) -> list[VendorEvent]:
    """The normalized events of a stored delivery (verified when it was received)."""
    return get_provider(account).parse_webhook(json.dumps(payload).encode(), headers)
