"""Delete all and reprogram never destroys a code whose PIN Lockstep does not know (issue "Truth under
fire" 13): an adopted keypad code on a lock that cannot read PINs back is not requeued as a create with
an empty PIN; staff give its PIN (checked against the lock's rules) or drop it, before the lock is
cleared; adopting such a code lets staff enter its PIN."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from locks.actions import issue_adopt_code, lock_delete_all_and_reprogram
from locks.models import (
    AccessCode,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    LockIssue,
)
from locks.planning import lock_reprogram
from tests import factories
from tests.locks.conftest import T0


@pytest.fixture
def write_only(single):
    """The lock cannot read PINs back (SmartThings-like): adopted codes arrive without their PIN."""
    lock = single.native
    lock.pin_readable = False
    lock.save()
    return lock


def unmanaged_issue(lock, *refs: str) -> LockIssue:
    return factories.LockIssueFactory(
        tenant=lock.tenant, lock=lock, access_code=None, kind=IssueKind.UNMANAGED_CODE,
        data={"codes": [{"vendor_code_ref": ref, "name": f"Cleaner {ref}", "pin_token": ""} for ref in refs]},
    )


@pytest.fixture
def cleaner(write_only) -> AccessCode:
    (code,) = issue_adopt_code(issue=unmanaged_issue(write_only, "3"), actor=None, now=T0)
    assert code.pin == ""
    return code


def creates_for(code: AccessCode):
    return LockCommand.objects.filter(access_code=code, action=CommandAction.CREATE,
                                      state__in=[CommandState.QUEUED, CommandState.SENT])


def test_reprogramming_never_requeues_a_code_without_a_pin_as_a_create(write_only, cleaner):
    lock_reprogram(lock=write_only, now=T0 + timedelta(minutes=5))

    cleaner.refresh_from_db()
    assert not creates_for(cleaner).exists()
    assert cleaner.status == CodeStatus.FAILED
    issue = LockIssue.objects.get(access_code=cleaner, status=IssueStatus.OPEN)
    assert "PIN" in issue.detail


def test_delete_all_refuses_while_a_code_with_an_unknown_pin_has_neither_a_pin_nor_a_drop(write_only, cleaner):
    with pytest.raises(ValidationError) as refused:
        lock_delete_all_and_reprogram(lock=write_only, actor=None, now=T0)

    assert str(cleaner.pk) in refused.value.message_dict
    assert not LockCommand.objects.filter(lock=write_only, action=CommandAction.DELETE_ALL).exists()


def test_delete_all_keeps_a_code_whose_pin_staff_gave(write_only, cleaner):
    lock_delete_all_and_reprogram(lock=write_only, actor=None, now=T0, pins={cleaner.pk: "583726"})

    cleaner.refresh_from_db()
    assert cleaner.pin == "583726"
    assert cleaner.status == CodeStatus.SET
    assert LockCommand.objects.filter(lock=write_only, action=CommandAction.DELETE_ALL).exists()

    lock_reprogram(lock=write_only, now=T0 + timedelta(minutes=5))
    cleaner.refresh_from_db()
    assert creates_for(cleaner).exists() and cleaner.pin == "583726"


@pytest.mark.parametrize("pin", ["12", "abcdef", "111111"])
def test_delete_all_refuses_a_pin_the_lock_would_refuse_and_saves_nothing(write_only, cleaner, pin):
    with pytest.raises(ValidationError) as refused:
        lock_delete_all_and_reprogram(lock=write_only, actor=None, now=T0, pins={cleaner.pk: pin})

    assert str(cleaner.pk) in refused.value.message_dict
    cleaner.refresh_from_db()
    assert cleaner.pin == ""
    assert not LockCommand.objects.filter(lock=write_only, action=CommandAction.DELETE_ALL).exists()


def test_delete_all_drops_a_code_staff_chose_to_lose(write_only, cleaner):
    lock_delete_all_and_reprogram(lock=write_only, actor=None, now=T0, drop={cleaner.pk})

    cleaner.refresh_from_db()
    assert cleaner.status in (CodeStatus.REMOVING, CodeStatus.REMOVED)
    assert LockCommand.objects.filter(lock=write_only, action=CommandAction.DELETE_ALL).exists()


def test_adopting_on_a_write_only_lock_takes_the_pin_staff_enter(write_only):
    issue = unmanaged_issue(write_only, "3", "4")

    adopted = issue_adopt_code(issue=issue, actor=None, now=T0, pins={"3": "583726"})

    by_ref = {code.vendor_code_ref: code for code in adopted}
    assert by_ref["3"].pin == "583726"
    assert by_ref["4"].pin == ""


def test_adopting_refuses_a_pin_the_lock_would_refuse_and_adopts_nothing(write_only):
    issue = unmanaged_issue(write_only, "3")

    with pytest.raises(ValidationError):
        issue_adopt_code(issue=issue, actor=None, now=T0, pins={"3": "12"})

    assert not AccessCode.objects.filter(lock=write_only).exists()
    issue.refresh_from_db()
    assert issue.status == IssueStatus.OPEN
