"""Staff actions, device health, the attention queue and the schedules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django_q.models import Schedule

from locks.actions import TransitionError, code_regenerate_pin, code_reveal_pin, issue_dismiss
from locks.apps import ensure_schedules
from locks.fleet import account_check_health, lock_observe_device
from locks.models import (
    AccessCode,
    Activity,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    LockIssue,
)
from locks.selectors import attention_queue, code_counts
from locks.tick import tick
from portal.services import booking_cancel, booking_create, booking_update
from providers.base import DeviceInfo, ProviderError, Reason
from providers.models import AccountStatus
from tests import factories
from tests.locks.conftest import T0
from tests.locks.fakes import FakeProvider


def _booking(place, *, hours=1, **extra):
    check_in = T0 + timedelta(hours=hours)
    return booking_create(tenant=place.tenant, property=place.property, guest_name="Finn",
                          check_in=check_in, check_out=check_in + timedelta(days=2), now=T0, **extra)


def test_it_records_who_revealed_a_pin(single):
    booking = _booking(single)
    code = AccessCode.objects.get(booking=booking)
    user = factories.UserFactory(username="bob")
    assert code_reveal_pin(code=code, actor=user, now=T0) == code.pin
    assert Activity.objects.filter(verb="pin.revealed", actor=user, access_code=code).exists()


def test_it_pushes_a_new_pin_to_the_lock(single, cloud):
    booking = _booking(single)
    tick(now=T0)
    code = AccessCode.objects.get(booking=booking)
    old = code.pin
    code_regenerate_pin(code=code, actor=None, now=T0 + timedelta(minutes=1))
    tick(now=T0 + timedelta(minutes=1))
    code.refresh_from_db()
    assert code.pin != old and cloud.sent("update")[-1].pin == code.pin
    booking_cancel(booking=booking, now=T0 + timedelta(minutes=2))
    with pytest.raises(TransitionError):
        code_regenerate_pin(code=code, actor=None, now=T0 + timedelta(minutes=2))


def test_it_refuses_to_dismiss_an_issue_twice(world):
    issue_dismiss(issue=world.issue, actor=world.alice, now=T0)
    assert LockIssue.objects.get(pk=world.issue.pk).status == IssueStatus.DISMISSED
    with pytest.raises(TransitionError):
        issue_dismiss(issue=world.issue, actor=world.alice, now=T0)


def test_it_opens_and_resolves_device_issues_from_reports(single):
    lock = single.native
    lock_observe_device(lock=lock, now=T0, online=False)
    lock_observe_device(lock=lock, now=T0 + timedelta(minutes=1), online=False)
    issue = LockIssue.objects.get(lock=lock, kind=IssueKind.DEVICE_OFFLINE)
    assert issue.occurrences == 2 and issue.status == IssueStatus.OPEN
    lock_observe_device(lock=lock, now=T0 + timedelta(minutes=2), online=True)
    issue.refresh_from_db()
    lock.refresh_from_db()
    assert issue.status == IssueStatus.RESOLVED and lock.last_seen_at == T0 + timedelta(minutes=2)


def test_it_updates_locks_and_the_account_from_the_health_poll(single, monkeypatch):
    monkeypatch.setattr(FakeProvider, "list_devices", lambda self: [
        DeviceInfo(vendor_device_id="front", name="Front", online=False, battery_level=0.05)])
    account_check_health(account=single.account, now=T0)
    single.native.refresh_from_db()
    single.account.refresh_from_db()
    assert single.native.online is False and single.account.status == AccountStatus.OK
    assert set(LockIssue.objects.filter(status=IssueStatus.OPEN).values_list("kind", flat=True)) == {
        IssueKind.DEVICE_OFFLINE, IssueKind.LOW_BATTERY}

    def rejected(self):
        raise ProviderError(Reason.AUTH_FAILED, "401")

    monkeypatch.setattr(FakeProvider, "list_devices", rejected)
    account_check_health(account=single.account, now=T0 + timedelta(minutes=10))
    single.account.refresh_from_db()
    assert single.account.status == AccountStatus.AUTH_FAILED
    assert LockIssue.objects.filter(kind=IssueKind.AUTH_FAILED, status=IssueStatus.OPEN).count() == 1


def test_it_lists_what_needs_a_person_in_the_attention_queue(place, cloud):
    soon = _booking(place)  # starts within 24 h, not on the locks yet
    _booking(place, hours=24 * 10)  # far away: not urgent
    lock_observe_device(lock=place.jit, now=T0, online=False, battery_level=0.1)
    items = attention_queue(tenant=place.tenant, now=T0)
    kinds = sorted(item.kind for item in items)
    assert kinds == ["code_not_set", "code_not_set", "lock_low_battery", "lock_offline"]
    assert {item.code.booking_id for item in items if item.code} == {soon.pk}

    other = factories.TenantFactory()
    assert attention_queue(tenant=other, now=T0) == []
    assert [i.kind for i in attention_queue(tenant=place.tenant, now=T0, properties=[])] == []
    assert LockCommand.objects.filter(lock=place.jit, state=CommandState.QUEUED).count() == 1
    counts = code_counts(codes=AccessCode.objects.filter(lock=place.jit))
    assert (counts[CodeStatus.UNSET], counts[CodeStatus.SETTING]) == (1, 1)


def test_it_validates_bookings_per_field(place):
    with pytest.raises(ValidationError) as error:
        booking_create(tenant=place.tenant, property=place.property, guest_name="X", now=T0,
                       check_in=T0 + timedelta(days=2), check_out=T0 + timedelta(days=1))
    assert "check_out" in error.value.message_dict
    booking = _booking(place, hours=48)
    with pytest.raises(ValidationError) as error:
        booking_update(booking=booking, status="cancelled")
    assert "status" in error.value.message_dict
    other_property = factories.PropertyFactory()
    with pytest.raises(ValidationError) as error:
        booking_update(booking=booking, property=other_property)
    assert "property" in error.value.message_dict


def test_it_moves_codes_with_a_booking_to_another_property(place, cloud):
    booking = _booking(place, hours=48)
    elsewhere = factories.PropertyFactory(tenant=place.tenant, name="Elsewhere")
    lock = factories.LockFactory(tenant=place.tenant, property=elsewhere, provider_account=place.account,
                                 vendor_device_id="elsewhere")
    booking_update(booking=booking, property=elsewhere, now=T0)
    live = AccessCode.objects.filter(booking=booking).exclude(status=CodeStatus.REMOVED)
    assert [c.lock_id for c in live] == [lock.pk]


def test_it_creates_the_engine_schedules_once_at_migrate(db):
    ensure_schedules()
    ensure_schedules()
    schedules = {s.func: s.minutes for s in Schedule.objects.filter(func__startswith="locks.")}
    assert schedules == {"locks.tasks.tick": 1, "locks.tasks.sweep": 1, "locks.tasks.reconcile_due": 5,
                         "locks.tasks.health": 10, "locks.tasks.refresh_tokens": 10}
    assert Schedule.objects.filter(func="locks.tasks.tick").count() == 1


def test_it_runs_the_scheduled_tasks_against_the_current_time(single, cloud, django_capture_on_commit_callbacks):
    import time_machine

    from locks import tasks

    with time_machine.travel(T0, tick=False):
        booking = _booking(single)
        tasks.tick()
        code = AccessCode.objects.get(booking=booking)
        assert code.status == CodeStatus.UNSET and code.is_scheduled_on_device
        tasks.tick()  # again: nothing more to do
        assert len(cloud.sent()) == 1
        with django_capture_on_commit_callbacks(execute=True):  # a worker sees the read once it is committed
            assert tasks.reconcile_due() == 1
        single.native.refresh_from_db()
        assert single.native.last_reconciled_at == T0
        code.refresh_from_db()
        assert code.verification == "read_back"
