"""The intake's fast path (DESIGN §12): the account cached per process, the portal's middleware skipped,
and on PostgreSQL the event and its task written in one round trip. Every security property stays."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from providers import webhooks
from providers.base import EventKind
from providers.models import ProviderAccount, WebhookEvent
from tests.locks.conftest import cloud, single  # noqa: F401 - fixtures
from tests.locks.fakes import sign


def _post(client, account, event_id: str, *, secret: str):
    body = json.dumps({"id": event_id, "events": [{"kind": EventKind.IGNORED, "device": "front"}]}).encode()
    return client.post(f"/webhooks/{account.vendor}/{account.uuid}/", data=body, content_type="application/json",
                       HTTP_X_FAKE_SIGNATURE=sign(secret, body))


def test_it_refuses_the_old_secret_at_once_when_the_secret_is_rotated_here(client, single):  # noqa: F811
    account = single.account
    assert _post(client, account, "before", secret="s3cret").status_code == 200  # now cached
    account.webhook_secret = "r0tated"
    account.save(update_fields=["webhook_secret"])
    assert _post(client, account, "old", secret="s3cret").status_code == 401
    assert _post(client, account, "new", secret="r0tated").status_code == 200
    assert set(WebhookEvent.objects.values_list("vendor_event_id", flat=True)) == {"before", "new"}


def test_it_accepts_a_secret_rotated_by_another_process_at_once(client, single):  # noqa: F811
    account = single.account
    assert _post(client, account, "before", secret="s3cret").status_code == 200  # now cached
    # Another process's save: no signal reaches this one, so only the database knows.
    ProviderAccount.objects.filter(pk=account.pk).update(webhook_secret="r0tated")
    assert _post(client, account, "new", secret="r0tated").status_code == 200


def test_it_honours_a_secret_rotated_elsewhere_no_longer_than_the_cache_keeps_it(client, single, monkeypatch):  # noqa: F811
    account = single.account
    assert _post(client, account, "before", secret="s3cret").status_code == 200
    ProviderAccount.objects.filter(pk=account.pk).update(webhook_secret="r0tated")
    monkeypatch.setattr(webhooks, "ACCOUNT_CACHE_SECONDS", 0.0)  # the cache's time is up
    assert _post(client, account, "old", secret="s3cret").status_code == 401
    assert not WebhookEvent.objects.filter(vendor_event_id="old").exists()


def test_it_answers_404_once_the_account_is_deleted(client, single):  # noqa: F811
    from tests import factories

    account = factories.ProviderAccountFactory(tenant=single.tenant, vendor=single.account.vendor,
                                               webhook_secret="s3cret")
    assert _post(client, account, "before", secret="s3cret").status_code == 200
    uuid, vendor = account.uuid, account.vendor
    account.delete()
    response = client.post(f"/webhooks/{vendor}/{uuid}/", data=b"{}", content_type="application/json")
    assert response.status_code == 404


def test_it_answers_without_session_or_csp_yet_with_the_security_headers(client, single):  # noqa: F811
    response = _post(client, single.account, "e1", secret="s3cret")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs
    assert "Content-Security-Policy" not in response.headers and not response.cookies
    assert client.get(f"/webhooks/{single.account.vendor}/{single.account.uuid}/").status_code == 405


def test_it_refuses_a_body_beyond_the_upload_limit(client, single, settings):  # noqa: F811
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"id": "big", "events": [], "pad": "x" * 2048}).encode()
    response = client.post(f"/webhooks/{single.account.vendor}/{single.account.uuid}/", data=body,
                           content_type="application/json", HTTP_X_FAKE_SIGNATURE=sign("s3cret", body))
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-round-trip write is PostgreSQL's")
def test_it_writes_event_and_task_in_one_statement_and_a_resend_adds_neither(client, single, monkeypatch,  # noqa: F811
                                                                             django_assert_max_num_queries):
    from django_q.conf import Conf
    from django_q.models import OrmQ

    monkeypatch.setattr(Conf, "SYNC", False)
    assert _post(client, single.account, "warm", secret="s3cret").status_code == 200  # account cached, ids taken
    with django_assert_max_num_queries(1):
        assert _post(client, single.account, "one", secret="s3cret").json() == {"ok": True, "duplicate": False}
    assert _post(client, single.account, "one", secret="s3cret").json() == {"ok": True, "duplicate": True}
    event = WebhookEvent.objects.get(vendor_event_id="one")
    tasks = [t.task for t in OrmQ.objects.all() if t.task["func"] == "locks.tasks.process_event"]
    assert sorted(t["args"] for t in tasks) == sorted([(event.pk,), (WebhookEvent.objects.get(vendor_event_id="warm").pk,)])


def test_a_deliverys_task_package_is_the_one_async_task_builds_without_its_log_line(monkeypatch):
    """The package is django-q's own (same keys, signed the same way, readable by a worker), built without
    `async_task`'s "Enqueued" log record, which cost more than the package itself (DESIGN §12)."""
    import logging

    from django_q.conf import Conf
    from django_q.signing import SignedPackage
    from django_q.tasks import async_task

    from providers.webhooks import _task_package

    monkeypatch.setattr(Conf, "SYNC", False)

    class Keep:
        list_key = "lockstep"
        package = ""

        def enqueue(self, package: str) -> str:
            self.package = package
            return "1"

    kept = Keep()
    async_task("locks.tasks.process_event", 42, broker=kept)
    records: list[str] = []
    logger = logging.getLogger("django-q")
    make_record = logger.makeRecord
    monkeypatch.setattr(logger, "makeRecord", lambda *a, **k: records.append(a[4]) or make_record(*a, **k))
    ours = SignedPackage.loads(_task_package(42))
    theirs = SignedPackage.loads(kept.package)
    assert sorted(ours) == sorted(theirs)
    assert {k: v for k, v in ours.items() if k not in ("id", "name", "started")} == {
        k: v for k, v in theirs.items() if k not in ("id", "name", "started")}
    assert ours["func"] == "locks.tasks.process_event" and ours["args"] == (42,)
    assert records == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-round-trip write is PostgreSQL's")
def test_it_pushes_the_task_after_commit_on_a_broker_outside_the_database(client, single, monkeypatch,  # noqa: F811
                                                                          django_capture_on_commit_callbacks):
    from django_q.conf import Conf
    from django_q.models import OrmQ

    pushed: list[int] = []
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(webhooks, "_broker_shares_our_transaction", lambda: False)  # Redis
    monkeypatch.setattr(webhooks, "_enqueue", pushed.append)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, single.account, "r1", secret="s3cret").json()["duplicate"] is False
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, single.account, "r1", secret="s3cret").json()["duplicate"] is True
    assert pushed == [WebhookEvent.objects.get(vendor_event_id="r1").pk]
    assert not OrmQ.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-round-trip write is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_delivery_costs_no_health_check_and_survives_a_connection_dropped_between_deliveries(
    client, single, monkeypatch  # noqa: F811
):
    """Django's per-request health check (`SELECT 1`) was a second round trip per delivery; the intake's one
    statement is its own check, and a connection the server dropped is replaced without losing the delivery."""
    import psycopg
    from django_q.conf import Conf
    from django_q.models import OrmQ

    monkeypatch.setattr(Conf, "SYNC", False)
    assert _post(client, single.account, "warm", secret="s3cret").status_code == 200  # account cached, ids taken
    checks: list[int] = []
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)
    connection.health_check_done = False  # as at the start of every request
    assert _post(client, single.account, "one", secret="s3cret").json() == {"ok": True, "duplicate": False}
    assert checks == []

    # The server drops the connection between two deliveries (a restart, an idle timeout, a pooler).
    settings = connection.settings_dict
    with psycopg.connect(dbname=settings["NAME"], host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], password=settings["PASSWORD"] or None, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    connection.health_check_done = False
    assert _post(client, single.account, "two", secret="s3cret").json() == {"ok": True, "duplicate": False}
    event = WebhookEvent.objects.get(vendor_event_id="two")
    assert any(t.task["args"] == (event.pk,) for t in OrmQ.objects.all())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes")
def test_a_new_event_writes_three_index_entries_only(db):
    """Every index entry is work for the intake (DESIGN §12): the account is indexed through the unique
    (account, event id) pair, and the links processing sets are indexed only once they are set."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'providers_webhookevent'")
        indexes = dict(cursor.fetchall())
    written_for_a_new_event = sorted(name for name, definition in indexes.items()
                                     if " WHERE " not in definition or "processed_at IS NULL" in definition)
    assert written_for_a_new_event == ["providers_webhookevent_pkey", "webhook_event_unique_per_account",
                                       "webhook_unprocessed"]
    assert {"webhook_matched_command", "webhook_matched_code"} <= set(indexes)  # deleting a code or command


def test_deleting_a_matched_code_keeps_its_events(single):  # noqa: F811
    from tests import factories

    code = factories.AccessCodeFactory(tenant=single.tenant, lock=single.native)
    event = WebhookEvent.objects.create(provider_account=single.account, vendor_event_id="m1",
                                        received_at=code.created_at, payload={}, matched_code=code)
    code.delete()
    event.refresh_from_db()
    assert event.matched_code_id is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements and settings")
@pytest.mark.parametrize("with_task", [True, False], ids=["orm-broker", "redis"])
def test_the_one_statement_is_prepared_once_and_commits_without_waiting_for_the_disk(single, monkeypatch,  # noqa: F811
                                                                                      with_task):
    """A statement list cannot be prepared: the intake's statement is one statement that sets its own
    transaction's durability, so PostgreSQL plans it once per connection, not once per delivery."""
    from django.utils import timezone

    from providers import webhook_store

    def deliver(n: int) -> bool:
        event = WebhookEvent(provider_account=single.account, vendor_event_id=f"p{n}", received_at=timezone.now(),
                             payload={"n": n}, headers={})
        return webhook_store.event_and_task_insert(event, task=(lambda pk: f"package-{pk}") if with_task else None)

    assert [deliver(n) for n in range(8)] == [True] * 8
    assert deliver(3) is False  # a resend: nothing written

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")  # the test's transaction is the deliveries' transaction
        assert cursor.fetchone() == ("off",)
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert [sql for sql in prepared if "set_config('synchronous_commit'" in sql and "INSERT INTO" in sql]
    assert WebhookEvent.objects.filter(vendor_event_id__startswith="p").count() == 8
