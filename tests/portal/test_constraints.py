"""Every database constraint rejects bad rows by itself (runs on SQLite and PostgreSQL alike).

Rows are written with `objects.create` / `bulk_create`, bypassing services and form validation, so
what is tested is the schema, not the Python in front of it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from locks.models import AccessCode, CodeStatus, CommandState, IssueStatus, Lock, LockCommand, LockIssue
from portal.encryption import fingerprint
from portal.models import Booking, BookingSource
from providers.models import WebhookEvent
from tests import factories


def rejects():
    return pytest.raises(IntegrityError)


# --- Booking


def test_it_rejects_a_booking_whose_check_out_is_not_after_check_in(world):
    now = timezone.now()
    with rejects(), transaction.atomic():
        Booking.objects.create(
            tenant=world.seaside, property=world.dune, guest_name="Same day", check_in=now, check_out=now
        )
    with rejects(), transaction.atomic():
        Booking.objects.create(
            tenant=world.seaside,
            property=world.dune,
            guest_name="Backwards",
            check_in=now,
            check_out=now - timedelta(days=1),
        )


def test_it_rejects_a_second_booking_with_the_same_external_ref_and_source(world):
    factories.BookingFactory(
        tenant=world.seaside, property=world.dune, source=BookingSource.API, external_ref="R-1",
        check_in=timezone.now() + timedelta(days=20),
    )
    with rejects(), transaction.atomic():
        factories.BookingFactory(
            tenant=world.seaside, property=world.harbor_view, source=BookingSource.API, external_ref="R-1",
            check_in=timezone.now() + timedelta(days=30),
        )


def test_it_allows_the_same_external_ref_from_another_source_or_tenant(world):
    factories.BookingFactory(
        tenant=world.seaside, property=world.dune, source=BookingSource.API, external_ref="R-1",
        check_in=timezone.now() + timedelta(days=20),
    )
    factories.BookingFactory(
        tenant=world.seaside, property=world.harbor_view, source=BookingSource.ICAL, external_ref="R-1",
        check_in=timezone.now() + timedelta(days=30),
    )
    factories.BookingFactory(
        tenant=world.harbor, property=world.harbor_property, source=BookingSource.API, external_ref="R-1"
    )
    assert Booking.objects.filter(external_ref="R-1").count() == 3


def test_it_allows_many_bookings_without_an_external_ref(world):
    for n in range(3):  # one after another: confirmed stays of a property never overlap
        factories.BookingFactory(tenant=world.seaside, property=world.dune, source=BookingSource.MANUAL,
                                 check_in=timezone.now() + timedelta(days=10 + 4 * n))
    assert Booking.objects.filter(tenant=world.seaside, external_ref="").count() == 5


# --- LockIssue


def _issue(
    world, *, code: AccessCode | None, kind: str = "nack", status: str = IssueStatus.OPEN
) -> LockIssue:
    now = timezone.now()
    return LockIssue.objects.create(
        tenant=world.seaside,
        lock=world.lock,
        access_code=code,
        kind=kind,
        status=status,
        first_seen_at=now,
        last_seen_at=now,
    )


def test_it_rejects_a_second_open_issue_of_one_kind_for_one_code(world):
    _issue(world, code=world.code)
    with rejects(), transaction.atomic():
        _issue(world, code=world.code)


def test_it_rejects_a_second_open_lock_wide_issue_of_one_kind(world):
    # Lock-wide issues have no code; NULL must not make them distinct.
    _issue(world, code=None, kind="device_offline")
    with rejects(), transaction.atomic():
        _issue(world, code=None, kind="device_offline")


def test_it_allows_closed_issues_and_other_kinds_beside_an_open_one(world):
    _issue(world, code=None, kind="device_offline")
    _issue(world, code=None, kind="device_offline", status=IssueStatus.RESOLVED)
    _issue(world, code=None, kind="device_offline", status=IssueStatus.DISMISSED)
    _issue(world, code=None, kind="low_battery")
    _issue(world, code=world.code, kind="device_offline")
    assert LockIssue.objects.filter(lock=world.lock, kind="device_offline").count() == 4


# --- LockCommand


def test_it_rejects_a_second_sent_command_on_one_lock(world):
    LockCommand.objects.create(
        tenant=world.seaside, lock=world.lock, action="create", state=CommandState.SENT
    )
    with rejects(), transaction.atomic():
        LockCommand.objects.create(
            tenant=world.seaside, lock=world.lock, action="delete", state=CommandState.SENT
        )


def test_it_rejects_promoting_a_queued_command_while_another_is_sent(world):
    LockCommand.objects.create(
        tenant=world.seaside, lock=world.lock, action="create", state=CommandState.SENT
    )
    queued = LockCommand.objects.create(tenant=world.seaside, lock=world.lock, action="delete")
    with rejects(), transaction.atomic():
        LockCommand.objects.filter(pk=queued.pk).update(state=CommandState.SENT)


def test_it_allows_many_queued_commands_and_one_sent_per_lock(world):
    for _ in range(2):
        LockCommand.objects.create(tenant=world.seaside, lock=world.lock, action="create")
    LockCommand.objects.create(
        tenant=world.seaside, lock=world.lock, action="create", state=CommandState.SENT
    )
    LockCommand.objects.create(
        tenant=world.seaside, lock=world.other_lock, action="create", state=CommandState.SENT
    )
    assert LockCommand.objects.filter(state=CommandState.SENT).count() == 2
    assert LockCommand.objects.filter(lock=world.lock, state=CommandState.QUEUED).count() == 3


# --- WebhookEvent


def test_it_rejects_a_repeated_vendor_event_id_on_one_account(world):
    def event(account):
        return WebhookEvent.objects.create(
            provider_account=account, vendor_event_id="evt_1", received_at=timezone.now(), payload={}
        )

    event(world.account)
    event(world.harbor_lock.provider_account)  # another account may reuse the id
    with rejects(), transaction.atomic():
        event(world.account)


# --- AccessCode


def _code(world, pin: str, status: str = CodeStatus.UNSET, lock: Lock | None = None) -> AccessCode:
    return factories.AccessCodeFactory(tenant=world.seaside, lock=lock or world.lock, pin=pin, status=status)


def test_it_rejects_two_live_codes_with_one_pin_on_a_lock(world):
    _code(world, "246810", CodeStatus.SET)
    with rejects(), transaction.atomic():
        _code(world, "246810", CodeStatus.SETTING)


def test_it_allows_a_removed_or_failed_code_to_share_a_live_pin(world):
    _code(world, "246810", CodeStatus.REMOVED)
    _code(world, "246810", CodeStatus.FAILED)
    _code(world, "246810", CodeStatus.SET)
    _code(world, "246810", CodeStatus.SET, lock=world.other_lock)
    assert AccessCode.objects.filter(lock=world.lock, pin_fingerprint=fingerprint("246810")).count() == 3


def test_it_rejects_reviving_a_removed_code_whose_pin_is_live_again(world):
    removed = _code(world, "246810", CodeStatus.REMOVED)
    _code(world, "246810", CodeStatus.SET)
    with rejects(), transaction.atomic():
        AccessCode.objects.filter(pk=removed.pk).update(status=CodeStatus.SETTING)


def test_it_rejects_a_code_that_ends_before_it_starts(world):
    start = timezone.now()
    with rejects(), transaction.atomic():
        factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, starts_at=start, ends_at=start)
    # Ongoing codes have no window at all.
    ongoing = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, code_type="ongoing", starts_at=None, ends_at=None
    )
    assert ongoing.pk


# --- Lock


def test_it_rejects_one_device_twice_on_one_account(world):
    with rejects(), transaction.atomic():
        factories.LockFactory(
            tenant=world.seaside,
            property=world.harbor_view,
            provider_account=world.account,
            vendor_device_id=world.lock.vendor_device_id,
        )


def test_it_allows_one_device_id_on_two_accounts(world):
    other_account = factories.ProviderAccountFactory(tenant=world.seaside)
    factories.LockFactory(
        tenant=world.seaside,
        property=world.dune,
        provider_account=other_account,
        vendor_device_id=world.lock.vendor_device_id,
    )
    assert Lock.objects.filter(vendor_device_id=world.lock.vendor_device_id).count() == 2


# --- Indexes the engine's hot queries rely on


def _indexes(model) -> dict[str, dict]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {name: info for name, info in found.items() if info["index"]}


@pytest.mark.parametrize(
    ("model", "name", "columns"),
    [
        (AccessCode, "code_due_program", ["program_at"]),
        (AccessCode, "code_due_remove", ["ends_at"]),
        (LockCommand, "command_sent_since", ["sent_at"]),
        (LockCommand, "command_queue_per_lock", ["lock_id", "id"]),
    ],
)
def test_it_has_the_index_for_the_due_work_queries(db, model, name, columns):
    indexes = _indexes(model)
    assert name in indexes, f"{name} missing on {model._meta.db_table}: {sorted(indexes)}"
    assert indexes[name]["columns"] == columns


def test_it_enforces_unique_constraints_with_real_indexes(db):
    # Partial unique constraints are unique *indexes* in both backends, so introspection sees them.
    assert _indexes(LockCommand)["command_one_in_flight_per_lock"]["unique"]
    assert _indexes(AccessCode)["code_unique_live_pin_per_lock"]["unique"]
    assert _indexes(LockIssue)["issue_one_open_per_lock_code_kind"]["unique"]
