from __future__ import annotations

import dataclasses

import pytest

from locks import troubleshooting as ts
from locks.models import IssueKind
from providers.base import Reason

AGREED_ACTIONS = {
    "retry_now", "reconcile", "reload_codes", "new_pin", "delete_all_and_reprogram", "adopt_code",
    "remove_code", "dismiss",
}


def test_it_has_exactly_the_agreed_actions_each_with_a_label_and_description():
    assert set(ts.ACTIONS) == AGREED_ACTIONS
    for name, action in ts.ACTIONS.items():
        assert action.name == name
        assert action.label and action.description
        assert action.scope in set(ts.ActionScope)


def test_it_asks_for_confirmation_before_delete_all_and_only_there():
    confirmed = {name for name, action in ts.ACTIONS.items() if action.needs_confirmation}

    assert confirmed == {"delete_all_and_reprogram"}
    assert "Continue?" in ts.ACTIONS["delete_all_and_reprogram"].confirmation


@pytest.mark.parametrize("kind", IssueKind.values)
def test_it_has_a_complete_playbook_for_every_issue_kind(kind):
    playbook = ts.playbook_for(kind)

    assert playbook.kind == kind
    assert playbook.title and playbook.meaning
    assert playbook.causes and all(playbook.causes)
    assert len(playbook.steps) >= 1 and all(step.strip() for step in playbook.steps)
    assert playbook.actions and set(playbook.actions) <= AGREED_ACTIONS
    assert len(set(playbook.actions)) == len(playbook.actions)
    assert playbook.severity in set(ts.Severity)
    assert set(playbook.vendor_notes) <= {"seam", "smartthings", "nuki", "schlage", "simulator"}
    assert [a.name for a in playbook.action_list] == list(playbook.actions)


def test_it_covers_no_kind_that_the_model_does_not_know():
    assert set(ts.PLAYBOOK) == set(IssueKind.values)


def test_it_carries_the_schlage_runbook_into_the_playbook():
    timeout = ts.playbook_for(IssueKind.COMMAND_TIMEOUT)
    steps = " ".join(timeout.steps)
    for advice in ("repeater", "Reboot the router", "batteries", "support"):
        assert advice in steps
    assert "split brain" in ts.playbook_for(IssueKind.DESYNC).vendor_notes["schlage"]
    assert "User not found in the device" in ts.playbook_for(IssueKind.USER_NOT_FOUND).vendor_notes["schlage"]
    assert "Delete All" in " ".join(ts.playbook_for(IssueKind.DESYNC).steps)
    assert "factory-reset" in " ".join(ts.playbook_for(IssueKind.DESYNC).steps)
    assert "delete_all_and_reprogram" in ts.playbook_for(IssueKind.DESYNC).actions
    assert "open question" in ts.playbook_for(IssueKind.SCHEDULE_INVALID).meaning
    assert "not mapped to a lock" in ts.playbook_for(IssueKind.UNRECOGNIZED_JOB_STATE).meaning
    assert "never confirmed" in ts.playbook_for(IssueKind.NACK).meaning
    assert "423" in ts.playbook_for(IssueKind.BUSY).vendor_notes["nuki"]
    assert "must not start with 12" in ts.playbook_for(IssueKind.INVALID_PIN).vendor_notes["nuki"]
    assert "'1 failed'" in ts.playbook_for(IssueKind.DUPLICATE_PIN).vendor_notes["smartthings"]


def test_it_offers_the_actions_that_fix_each_kind():
    assert ts.playbook_for(IssueKind.DUPLICATE_PIN).actions[0] == "new_pin"
    assert set(ts.playbook_for(IssueKind.UNMANAGED_CODE).actions) == {"adopt_code", "remove_code", "dismiss"}
    assert "retry_now" in ts.playbook_for(IssueKind.COMMAND_TIMEOUT).actions
    assert "reload_codes" in ts.playbook_for(IssueKind.BUSY).actions


@pytest.mark.parametrize("reason", list(Reason))
def test_it_maps_every_reason_to_an_issue_kind(reason):
    assert ts.issue_kind_for_reason(reason) in IssueKind.values
    assert ts.issue_kind_for_reason(str(reason)) == ts.REASON_TO_ISSUE[reason]


def test_it_maps_reasons_to_the_kinds_staff_recognise():
    assert ts.issue_kind_for_reason("timeout") == IssueKind.COMMAND_TIMEOUT
    assert ts.issue_kind_for_reason("not_found_on_device") == IssueKind.DESYNC
    assert ts.issue_kind_for_reason("busy") == IssueKind.BUSY
    assert ts.issue_kind_for_reason("duplicate_pin") == IssueKind.DUPLICATE_PIN
    assert ts.issue_kind_for_reason("something_new") == IssueKind.VENDOR_ERROR


def test_it_falls_back_to_the_vendor_error_playbook_for_an_unknown_kind():
    assert ts.playbook_for("retired_kind") is ts.playbook_for(IssueKind.VENDOR_ERROR)


def test_it_keeps_the_playbook_read_only():
    with pytest.raises(TypeError):
        ts.PLAYBOOK["nack"] = ts.playbook_for("nack")  # type: ignore[index]
    with pytest.raises(TypeError):
        ts.playbook_for("nack").vendor_notes["nuki"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ts.playbook_for("nack").title = "x"  # type: ignore[misc]
