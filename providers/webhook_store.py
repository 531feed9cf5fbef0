"""The webhook intake's write on PostgreSQL with the ORM broker: the event and its processing task in one
round trip (DESIGN §12: intake at least half a bare view's throughput).

Through the ORM a delivery cost six round trips (BEGIN, SET LOCAL, the event INSERT, the task INSERT,
COMMIT, on top of the connection's health check), each a few hundred microseconds of two processes'
time. Here it is one statement, prepared once per connection, run by PostgreSQL as one implicit transaction: the event is
inserted unless the account already has it (a vendor's resend), and the task row only when the event
was; so the task never exists without its event, nor the event without its task. The event's id comes
from a block of the table's sequence taken ahead, so the task package (which names the event) can be
built before the statement is sent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from django.db import InterfaceError, OperationalError, connection
from django.db.models import Field
from django.utils import timezone

from providers.models import WebhookEvent

ID_BLOCK = 100


class _IdBlock:
    """Event ids taken from the sequence ahead, per process (a forked child starts its own block)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.ids: list[int] = []

    def take(self) -> int:
        with self.lock:
            if self.pid != os.getpid() or not self.ids:
                table = WebhookEvent._meta.db_table
                with connection.cursor() as cursor:
                    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                                   [table, ID_BLOCK])
                    self.ids = sorted((row[0] for row in cursor.fetchall()), reverse=True)
                self.pid = os.getpid()
            return self.ids.pop()


_ids = _IdBlock()


def event_and_task_insert(event: WebhookEvent, *, task: Callable[[int], str] | None) -> bool:
    """Insert `event` (unsaved) and, given `task`, the django-q task row `task(event id)`, in one
    transaction without durable commit (see `webhooks._relax_commit_durability`). Without `task` (Redis)
    the caller pushes the task once this returns. False when the account already had this delivery."""
    from django_q.conf import Conf
    from django_q.models import OrmQ

    event.pk = _ids.take()
    event_fields, queue_fields = _fields()
    params = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in event_fields]
    if task is not None:
        queued = OrmQ(key=Conf.CLUSTER_NAME, payload=task(event.pk), lock=timezone.now())
        params += [f.get_db_prep_save(f.pre_save(queued, True), connection) for f in queue_fields]
    sql = _insert_sql(with_task=task is not None)
    if connection.in_atomic_block:  # a caller's transaction (tests): no retry can replace its work
        return _execute(sql, params)
    # The statement is its own health check: Django's (CONN_HEALTH_CHECKS) would cost a `SELECT 1` round
    # trip per delivery, a fifth of what intake does with the database. A connection that died since the last
    # delivery fails the statement before it reaches the server; it is closed and the statement sent once
    # more on a new one (and should the first have landed after all, ON CONFLICT makes the second a no-op).
    connection.health_check_done = True  # type: ignore[attr-defined]  # set by every backend's __init__
    try:
        return _execute(sql, params)
    except (InterfaceError, OperationalError):
        connection.close()
        return _execute(sql, params)


def _execute(sql: str, params: list[Any]) -> bool:
    """Run the one statement prepared, with server-side binding (Django's cursors bind on the client and
    prepare nothing, so every statement was parsed and planned afresh): the first delivery on a connection
    prepares it, each later one is a bind and an execute. Through Django's cursor wrapper, so it is counted,
    logged in DEBUG and its errors are Django's."""
    import psycopg

    connection.ensure_connection()
    pg = connection.connection
    with connection.wrap_database_errors:
        raw = psycopg.Cursor(pg)  # binds on the server, unlike Django's ClientCursor
    # Django turns psycopg's preparing off for the connection (`prepare_threshold` None); 0 (prepare at the first
    # use) for this statement only, so no other query of the process is prepared.
    threshold, pg.prepare_threshold = pg.prepare_threshold, 0
    try:
        with connection._prepare_cursor(raw) as cursor:  # type: ignore[attr-defined]
            cursor.execute(sql, params)
            return cursor.fetchone() is not None
    finally:
        pg.prepare_threshold = threshold


@cache
def _fields() -> tuple[list[Field[Any, Any]], list[Field[Any, Any]]]:
    from django_q.models import OrmQ

    return list(WebhookEvent._meta.concrete_fields), [f for f in OrmQ._meta.concrete_fields if not f.primary_key]


@cache
def _insert_sql(*, with_task: bool) -> str:
    from django_q.models import OrmQ

    quote = connection.ops.quote_name
    event_fields, queue_fields = _fields()
    # Only quoted table and column names from the models are formatted in; every value is a parameter.
    insert_event = (
        f"INSERT INTO {quote(WebhookEvent._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in event_fields)}) VALUES ({', '.join(['%s'] * len(event_fields))}) "
        "ON CONFLICT (provider_account_id, vendor_event_id) DO NOTHING RETURNING id"
    )
    # Durable commit off for this one transaction (webhooks._relax_commit_durability says why), set inside the
    # statement: a statement list (`SET LOCAL …; INSERT …`) cannot be prepared. The setting is read at commit.
    durability = "durability AS (SELECT set_config('synchronous_commit', 'off', true) AS setting)"
    if not with_task:
        return f"WITH {durability}, event AS ({insert_event}) SELECT event.id FROM event, durability"  # noqa: S608
    return (
        f"WITH {durability}, event AS ({insert_event}) "  # noqa: S608
        f"INSERT INTO {quote(OrmQ._meta.db_table)} ({', '.join(quote(f.column) for f in queue_fields)}) "
        f"SELECT {', '.join(['%s'] * len(queue_fields))} FROM event, durability RETURNING id"
    )
