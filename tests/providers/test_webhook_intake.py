"""POST /webhooks/<vendor>/<account uuid>/: verify the raw body, store once, enqueue, answer fast."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from locks.models import AccessCode, CodeStatus, LockCommand
from locks.tick import tick
from portal.services import booking_create
from providers.base import EventKind, Progress
from providers.models import WebhookEvent
from tests.locks.conftest import T0, cloud, single  # noqa: F401 - fixtures
from tests.locks.fakes import sign


def _url(account, vendor: str | None = None) -> str:
    return f"/webhooks/{vendor or account.vendor}/{account.uuid}/"


def _post(client, account, payload, *, secret: str | None = "s3cret", vendor: str | None = None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"HTTP_X_FAKE_SIGNATURE": sign(secret, body)} if secret else {}
    return client.post(_url(account, vendor), data=body, content_type="application/json", **headers)


@pytest.fixture
def in_flight(single, cloud):  # noqa: F811
    cloud.mode = Progress.PENDING
    check_in = T0 + timedelta(hours=1)
    booking_create(tenant=single.tenant, property=single.property, guest_name="Emma", check_in=check_in,
                   check_out=check_in + timedelta(days=1), now=T0)
    tick(now=T0)
    return LockCommand.objects.get()


def test_it_stores_processes_and_completes_the_command_for_a_valid_webhook(client, single, in_flight,  # noqa: F811
                                                                      django_capture_on_commit_callbacks):
    payload = {"id": "evt-1", "events": [{"kind": EventKind.CODE_SET, "device": "front", "ref": in_flight.vendor_ref}]}
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, single.account, payload)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.vendor_event_id == "evt-1" and event.payload == payload
    assert event.processed_at is not None and event.matched_command_id == in_flight.pk
    code = AccessCode.objects.get()
    assert code.status in (CodeStatus.SET, CodeStatus.UNSET) and code.verification == "vendor_ack"


def test_it_answers_401_to_an_unsigned_webhook_and_stores_nothing(client, single):  # noqa: F811
    response = _post(client, single.account, {"id": "evt-1", "events": []}, secret=None)
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_it_answers_401_to_a_forged_webhook(client, single):  # noqa: F811
    response = _post(client, single.account, {"id": "evt-1", "events": []}, secret="wrong")
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_it_answers_400_to_a_malformed_webhook_and_stores_nothing(client, single):  # noqa: F811
    response = _post(client, single.account, None, raw=b"{not json")
    assert response.status_code == 400
    response = _post(client, single.account, {"no": "events"})
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_it_stores_a_repeated_event_once_and_answers_2xx(client, single, in_flight,  # noqa: F811
                                                          django_capture_on_commit_callbacks):
    payload = {"id": "evt-7", "events": [{"kind": EventKind.CODE_SET, "device": "front", "ref": in_flight.vendor_ref}]}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = _post(client, single.account, payload)
    with django_capture_on_commit_callbacks(execute=True) as again:
        second = _post(client, single.account, payload)
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert WebhookEvent.objects.count() == 1
    assert len(callbacks) >= 1 and len(again) == 0  # processing enqueued once


def test_it_answers_404_for_an_unknown_account_or_vendor_mismatch(client, single):  # noqa: F811
    response = client.post(f"/webhooks/simulator/{uuid.uuid4()}/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert _post(client, single.account, {"id": "e", "events": []}, vendor="seam").status_code == 404
    assert not WebhookEvent.objects.exists()


def test_it_needs_no_csrf_token_and_only_accepts_post(single):  # noqa: F811
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert _post(strict, single.account, {"id": "evt-2", "events": []}).status_code == 200
    assert strict.get(_url(single.account)).status_code == 405


def test_it_tracks_device_health_and_issues_from_events(client, single, django_capture_on_commit_callbacks):  # noqa: F811
    from locks.models import IssueKind, IssueStatus, LockIssue

    with django_capture_on_commit_callbacks(execute=True):
        _post(client, single.account, {"id": "d1", "events": [{"kind": EventKind.DEVICE_OFFLINE, "device": "front"},
                                                              {"kind": EventKind.BATTERY, "device": "front",
                                                               "battery": 0.1}]})
    single.native.refresh_from_db()
    assert single.native.online is False and single.native.battery_level == 0.1
    assert set(LockIssue.objects.filter(status=IssueStatus.OPEN).values_list("kind", flat=True)) == {
        IssueKind.DEVICE_OFFLINE, IssueKind.LOW_BATTERY}
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, single.account, {"id": "d2", "events": [{"kind": EventKind.DEVICE_ONLINE, "device": "front"},
                                                              {"kind": EventKind.BATTERY, "device": "front",
                                                               "battery": 0.9}]})
    assert not LockIssue.objects.filter(status=IssueStatus.OPEN).exists()


def test_it_enqueues_the_processing_in_the_same_commit_as_the_event_on_the_orm_broker(
    client, single, monkeypatch  # noqa: F811
):
    from django_q.conf import Conf
    from django_q.models import OrmQ

    monkeypatch.setattr(Conf, "SYNC", False)  # as in production: a worker picks the task up later
    payload = {"id": "evt-q", "events": [{"kind": EventKind.IGNORED, "device": "front"}]}
    assert _post(client, single.account, payload).status_code == 200
    assert _post(client, single.account, payload).status_code == 200  # a vendor's resend
    event = WebhookEvent.objects.get()
    tasks = [task for task in OrmQ.objects.all() if task.task["func"] == "locks.tasks.process_event"]
    assert len(tasks) == 1 and tasks[0].task["args"] == (event.pk,)
    assert event.processed_at is None
