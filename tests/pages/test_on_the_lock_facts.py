""""On the lock" facts come only from reads newer than the code's last change (DESIGN §4; issue "Truth
under fire" 14): an older read says "not checked since the change", a code adopted since the read is
not listed again as unmanaged, and a staff action queues a read that refreshes the facts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from locks.actions import issue_adopt_code
from locks.models import CodeStatus, CommandAction, CommandState, IssueKind, LockCommand
from locks.reconcile import lock_apply_reading
from locks.transitions import code_move
from providers.base import ObservedCode
from tests import factories


@pytest.fixture
def on_lock(world):
    world.command.state = CommandState.SUCCEEDED
    world.command.save()
    world.code.status = CodeStatus.SET
    world.code.vendor_code_ref = "1"
    world.code.save()
    return world.code


def lock_page(client, world) -> str:
    client.force_login(world.bob)
    return client.get(reverse("locks:lock_detail", args=["seaside", world.lock.pk])).content.decode()


def test_a_read_newer_than_the_codes_last_change_is_shown(client, world, on_lock):
    lock_apply_reading(lock=world.lock, observed=[ObservedCode("1", pin="483920")],
                       now=timezone.now() + timedelta(minutes=1))

    page = lock_page(client, world)

    assert "Matches the lock" in page
    assert "not checked since the change" not in page


def test_a_read_older_than_the_codes_last_change_is_not_shown_as_a_match(client, world, on_lock):
    read_at = timezone.now() + timedelta(minutes=1)
    lock_apply_reading(lock=world.lock, observed=[ObservedCode("1", pin="483920")], now=read_at)
    code_move(on_lock, old=[CodeStatus.SET], new=CodeStatus.FAILED, now=read_at + timedelta(minutes=5),
              note="nack", last_reason="nack")

    page = lock_page(client, world)

    assert "Matches the lock" not in page
    assert "not checked since the change" in page


def test_a_code_adopted_since_the_read_is_not_listed_again_as_unmanaged(client, world, on_lock):
    read_at = timezone.now() + timedelta(minutes=1)
    lock_apply_reading(lock=world.lock, observed=[ObservedCode("1", pin="483920"),
                                                  ObservedCode("7", name="Cleaner", pin="583726")], now=read_at)
    assert "<code>7</code>" in lock_page(client, world)
    issue = world.lock.issues.get(kind=IssueKind.UNMANAGED_CODE)

    issue_adopt_code(issue=issue, actor=world.bob, now=read_at + timedelta(minutes=1))

    page = lock_page(client, world)
    assert "Not managed by Lockstep" not in page
    assert page.count("<code>7</code>") == 1  # once, as the managed code it now is


@pytest.mark.parametrize(
    ("url_name", "action", "prepare"),
    [
        ("issue_action", "adopt_code", "unmanaged"),
        ("code_action", "retry_now", "failed"),
        ("code_action", "new_pin", "set"),
    ],
)
def test_a_staff_action_queues_a_read_that_refreshes_the_facts(client, world, on_lock, url_name, action, prepare):
    if prepare == "unmanaged":
        target = factories.LockIssueFactory(
            tenant=world.seaside, lock=world.lock, access_code=None, kind=IssueKind.UNMANAGED_CODE,
            data={"codes": [{"vendor_code_ref": "7", "name": "Cleaner", "pin_token": ""}]},
        ).pk
    else:
        if prepare == "failed":
            on_lock.status = CodeStatus.FAILED
            on_lock.save()
        target = on_lock.pk
    client.force_login(world.bob)

    response = client.post(reverse(f"locks:{url_name}", args=["seaside", target, action]))

    assert response.status_code == 302
    assert LockCommand.objects.filter(lock=world.lock, action=CommandAction.READ_CODES,
                                      state=CommandState.QUEUED).exists()
