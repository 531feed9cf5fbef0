"""Lock-wide work goes through the lock's queue (issue "One home per concern", acceptance 4 and 5)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from locks.actions import lock_delete_all_and_reprogram
from locks.dispatch import dispatch_lock
from locks.fleet import account_check_connection
from locks.models import AccessCode, CodeStatus, CommandState, IssueKind, IssueStatus, LockCommand, LockIssue
from locks.sweep import sweep
from locks.tick import tick
from portal.services import booking_create
from providers.base import ObservedCode, Progress, ProviderError, Reason
from providers.models import AccountStatus
from tests.locks.conftest import T0
from tests.locks.fakes import FakeCloud, FakeProvider


def _refuse_while_busy(cloud: FakeCloud, monkeypatch) -> list[str]:
    """The vendor refuses any write while one of its operations is still pending (Nuki's 423,
    SmartThings' busy); returns the refusals, which must stay empty."""
    refusals: list[str] = []
    original_op = FakeCloud._op
    original_delete = FakeProvider.delete_observed_code

    def guarded(action: str) -> None:
        if cloud.applied:
            refusals.append(action)
            raise ProviderError(Reason.BUSY, "busy: another operation is in progress", status_code=423)

    def op(self, action, lock, code):
        guarded(action)
        return original_op(self, action, lock, code)

    def delete_observed(self, lock, vendor_code_ref):
        guarded("delete_observed")
        return original_delete(self, lock, vendor_code_ref)

    monkeypatch.setattr(FakeCloud, "_op", op)
    monkeypatch.setattr(FakeProvider, "delete_observed_code", delete_observed)
    return refusals


def test_delete_all_waits_for_the_command_in_flight_then_clears_and_reprograms_through_the_queue(
    single, cloud, monkeypatch
):
    refusals = _refuse_while_busy(cloud, monkeypatch)
    cloud.mode = Progress.PENDING
    check_in = T0 + timedelta(hours=1)
    booking_create(tenant=single.tenant, property=single.property, guest_name="Ana", check_in=check_in,
                   check_out=check_in + timedelta(days=2), now=T0)
    tick(now=T0)
    code = AccessCode.objects.get()
    [create] = LockCommand.objects.filter(state=CommandState.SENT)
    # Someone typed a code at the keypad: the lock holds it besides ours (which is still being set).
    cloud.codes.setdefault("front", {})["keypad-1"] = ObservedCode("keypad-1", name="Cleaner", pin="246810")

    with transaction.atomic():
        clear = lock_delete_all_and_reprogram(lock=single.native, actor=None, now=T0 + timedelta(minutes=1))
    dispatch_lock(lock_id=single.native.pk, now=T0 + timedelta(minutes=1))
    # Nothing was sent while the create is in flight: the clear waits its turn.
    assert [c.action for c in cloud.calls] == ["create"]
    clear.refresh_from_db()
    assert clear.state == CommandState.QUEUED

    cloud.finish(create.vendor_ref)  # the lock did it; the sweeper hears it, then the queue moves on
    sweep(now=T0 + timedelta(minutes=6))
    clear.refresh_from_db()
    assert clear.state == CommandState.SUCCEEDED
    removals = list(LockCommand.objects.filter(action="remove_code").order_by("id"))
    assert sorted(r.target_ref for r in removals) == sorted([f"slot-{code.pk}", "keypad-1"])
    assert all(r.state == CommandState.SUCCEEDED for r in removals)
    # Every removal went out before the code was programmed again, one operation at a time.
    actions = [c.action for c in cloud.calls if c.action != "status"]
    assert actions == ["create", "read", "delete_observed", "delete_observed", "create"]
    recreate = LockCommand.objects.filter(access_code=code, action="create").order_by("-id").first()
    assert recreate is not None and recreate.state == CommandState.SENT
    cloud.finish(recreate.vendor_ref)
    sweep(now=T0 + timedelta(minutes=12))
    code.refresh_from_db()
    assert code.status in (CodeStatus.SET, CodeStatus.UNSET) and code.vendor_code_ref in cloud.codes["front"]
    assert list(cloud.codes["front"]) == [code.vendor_code_ref]  # the lock holds just our code
    assert refusals == []
    assert not LockCommand.objects.filter(reason=Reason.BUSY).exists()


def test_test_connection_opens_and_resolves_auth_failed_like_the_health_task(place, cloud, monkeypatch):
    def rejected(self):
        raise ProviderError(Reason.AUTH_FAILED, "401 Unauthorized: key revoked", status_code=401)

    monkeypatch.setattr(FakeProvider, "check_connection", rejected)
    result = account_check_connection(account=place.account, actor=None, now=T0)
    assert not result.ok and result.status == AccountStatus.AUTH_FAILED
    assert "revoked" not in result.detail  # our words, not the vendor's
    open_auth = LockIssue.objects.filter(kind=IssueKind.AUTH_FAILED, status=IssueStatus.OPEN)
    assert sorted(open_auth.values_list("lock_id", flat=True)) == sorted([place.native.pk, place.jit.pk])

    monkeypatch.setattr(FakeProvider, "check_connection", lambda self: None)
    result = account_check_connection(account=place.account, actor=None, now=T0 + timedelta(minutes=1))
    assert result.ok
    place.account.refresh_from_db()
    assert place.account.status == AccountStatus.OK
    assert not open_auth.exists()
    assert LockIssue.objects.filter(kind=IssueKind.AUTH_FAILED, status=IssueStatus.RESOLVED).count() == 2


def test_clearing_a_lock_resolves_its_unmanaged_code_issue_only_once_a_read_finds_the_code_gone(single, cloud):
    """Seen in the 300-booking harsh runs (`overstay_unflagged`, `orphan_codes`): "Delete all" resolved the
    lock's unmanaged-code issue as soon as the removals were queued; one of them waited behind a busy lock,
    and a past guest's code stayed on the door for minutes with no issue saying so."""
    from locks.reconcile import lock_clear
    from tests.locks.conftest import reconcile_now

    cloud.codes.setdefault("front", {})["keypad-1"] = ObservedCode("keypad-1", name="Guest 267", pin="246810")
    reconcile_now(lock=single.native, now=T0)
    issue = LockIssue.objects.get(kind=IssueKind.UNMANAGED_CODE, status=IssueStatus.OPEN)

    with transaction.atomic():
        lock_clear(lock=single.native, refs=["keypad-1"], now=T0 + timedelta(minutes=1))

    issue.refresh_from_db()
    assert issue.status == IssueStatus.OPEN  # queued is not gone: the PIN still opens the door
    dispatch_lock(lock_id=single.native.pk, now=T0 + timedelta(minutes=2))
    assert "keypad-1" not in cloud.codes["front"]
    issue.refresh_from_db()
    assert issue.status == IssueStatus.RESOLVED  # the read after the removals found it gone
