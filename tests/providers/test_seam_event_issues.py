"""Seam events that need a person open issues with playbooks; none is stored as "ignored" (issue "Truth
under fire" 12d). Signed Svix deliveries through the webhook URL; event names and shapes as in
seamapi/types src/lib/seam/connect/models/events (devices.ts, access-codes.ts, connected-accounts.ts)."""

from __future__ import annotations

import pytest
import responses
from django.utils import timezone

from locks.fleet import account_check_health
from locks.models import CommandAction, CommandState, IssueKind, IssueStatus, LockIssue
from locks.troubleshooting import playbook_for
from providers.models import AccountStatus, WebhookEvent
from tests.providers.test_seam import BASE, account, lock, post_webhook, seam, signed  # noqa: F401 - fixtures

DEVICE_EVENT = {
    "event_id": "ev_9",
    "device_id": "device_1",
    "connected_account_id": "ca_1",
    "workspace_id": "ws_1",
    "created_at": "2026-12-01T15:00:03.000Z",
    "occurred_at": "2026-12-01T15:00:03.000Z",
}


def deliver(client, account, event: dict, django_capture_on_commit_callbacks, message_id: str = "msg_9"):  # noqa: F811
    body, headers = signed(event, message_id=message_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, account, body, headers)
    assert response.status_code == 200
    return WebhookEvent.objects.get(provider_account=account, vendor_event_id=message_id)


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("device.accessory_keypad_disconnected", IssueKind.KEYPAD_DISCONNECTED),
        ("device.tampered", IssueKind.DEVICE_TAMPERED),
        ("device.third_party_integration_detected", IssueKind.THIRD_PARTY_INTEGRATION),
        ("device.error.subscription_required", IssueKind.SUBSCRIPTION_REQUIRED),
    ],
)
def test_a_device_event_that_needs_a_person_opens_an_issue_with_a_playbook(
    client, account, lock, django_capture_on_commit_callbacks, event_type, kind  # noqa: F811
):
    stored = deliver(client, account, {**DEVICE_EVENT, "event_type": event_type}, django_capture_on_commit_callbacks)

    issue = LockIssue.objects.get(lock=lock, kind=kind)
    assert issue.status == IssueStatus.OPEN
    assert "ignored" not in stored.result
    playbook = playbook_for(kind)
    assert playbook.kind == kind and playbook.steps


@pytest.mark.parametrize(
    ("opened_by", "closed_by", "kind"),
    [
        ("device.accessory_keypad_disconnected", "device.accessory_keypad_connected", IssueKind.KEYPAD_DISCONNECTED),
        ("device.third_party_integration_detected", "device.third_party_integration_no_longer_detected",
         IssueKind.THIRD_PARTY_INTEGRATION),
        ("device.error.subscription_required", "device.error.subscription_required.resolved",
         IssueKind.SUBSCRIPTION_REQUIRED),
    ],
)
def test_the_vendors_all_clear_resolves_the_issue(
    client, account, lock, django_capture_on_commit_callbacks, opened_by, closed_by, kind  # noqa: F811
):
    deliver(client, account, {**DEVICE_EVENT, "event_type": opened_by}, django_capture_on_commit_callbacks)
    deliver(client, account, {**DEVICE_EVENT, "event_id": "ev_10", "event_type": closed_by},
            django_capture_on_commit_callbacks, message_id="msg_10")

    assert LockIssue.objects.get(lock=lock, kind=kind).status == IssueStatus.RESOLVED


def test_an_unmanaged_code_created_on_the_lock_opens_an_issue_and_asks_for_a_read(
    client, account, lock, django_capture_on_commit_callbacks  # noqa: F811
):
    event = {**DEVICE_EVENT, "event_type": "access_code.unmanaged.created", "access_code_id": "uac_7"}

    stored = deliver(client, account, event, django_capture_on_commit_callbacks)

    issue = LockIssue.objects.get(lock=lock, kind=IssueKind.UNMANAGED_CODE, status=IssueStatus.OPEN)
    assert [item["vendor_code_ref"] for item in issue.data["codes"]] == ["uac_7"]
    read = lock.commands.get(action=CommandAction.READ_CODES)
    assert read.state in (CommandState.QUEUED, CommandState.SENT, CommandState.SUCCEEDED, CommandState.FAILED)
    assert "ignored" not in stored.result


@pytest.mark.parametrize(
    "event",
    [
        {**DEVICE_EVENT, "event_type": "device.disconnected", "error_code": "account_disconnected"},
        {k: v for k, v in DEVICE_EVENT.items() if k != "device_id"} | {"event_type": "connected_account.disconnected"},
    ],
    ids=["device-disconnected-by-its-account", "connected-account-disconnected"],
)
def test_a_disconnected_account_reads_reconnect_the_account_not_lock_offline(
    client, account, lock, django_capture_on_commit_callbacks, event  # noqa: F811
):
    deliver(client, account, event, django_capture_on_commit_callbacks)

    account.refresh_from_db()
    lock.refresh_from_db()
    assert account.status == AccountStatus.AUTH_FAILED
    assert "reconnect" in account.status_detail.lower()
    assert LockIssue.objects.filter(lock=lock, kind=IssueKind.AUTH_FAILED, status=IssueStatus.OPEN).exists()
    assert not LockIssue.objects.filter(lock=lock, kind=IssueKind.DEVICE_OFFLINE).exists()


def test_a_device_that_lost_its_hub_still_reads_lock_offline(
    client, account, lock, django_capture_on_commit_callbacks  # noqa: F811
):
    event = {**DEVICE_EVENT, "event_type": "device.disconnected", "error_code": "hub_disconnected"}

    deliver(client, account, event, django_capture_on_commit_callbacks)

    account.refresh_from_db()
    assert account.status != AccountStatus.AUTH_FAILED
    assert LockIssue.objects.filter(lock=lock, kind=IssueKind.DEVICE_OFFLINE, status=IssueStatus.OPEN).exists()


@responses.activate
def test_the_health_poll_keeps_reconnect_the_account_while_seam_says_so(
    client, account, lock, django_capture_on_commit_callbacks  # noqa: F811
):
    # Seam's own API key still works, so listing devices succeeds; the devices carry the account's error.
    event = {**DEVICE_EVENT, "event_type": "device.disconnected", "error_code": "account_disconnected"}
    deliver(client, account, event, django_capture_on_commit_callbacks)
    responses.post(f"{BASE}/devices/list", json={"devices": [{
        "device_id": "device_1", "capabilities_supported": ["access_code", "lock"],
        "properties": {"online": False, "name": "Front"},
        "errors": [{"error_code": "account_disconnected", "message": "Account disconnected"}],
    }]})

    account_check_health(account=account, now=timezone.now())

    account.refresh_from_db()
    assert account.status == AccountStatus.AUTH_FAILED
    assert "reconnect" in account.status_detail.lower()
    assert LockIssue.objects.filter(lock=lock, kind=IssueKind.AUTH_FAILED, status=IssueStatus.OPEN).exists()
    assert not LockIssue.objects.filter(lock=lock, kind=IssueKind.DEVICE_OFFLINE).exists()


@responses.activate
def test_the_health_poll_clears_it_once_the_account_is_reconnected(
    client, account, lock, django_capture_on_commit_callbacks  # noqa: F811
):
    event = {**DEVICE_EVENT, "event_type": "device.disconnected", "error_code": "account_disconnected"}
    deliver(client, account, event, django_capture_on_commit_callbacks)
    responses.post(f"{BASE}/devices/list", json={"devices": [{
        "device_id": "device_1", "capabilities_supported": ["access_code", "lock"],
        "properties": {"online": True, "name": "Front"}, "errors": [],
    }]})

    account_check_health(account=account, now=timezone.now())

    account.refresh_from_db()
    assert account.status == AccountStatus.OK
    assert not LockIssue.objects.filter(lock=lock, kind=IssueKind.AUTH_FAILED, status=IssueStatus.OPEN).exists()
