"""Codes for people who are not guests (cleaner, maintenance, owner, staff): created by staff on one lock
or on every lock of a property, and living the same life as a guest's code through the lock's queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from locks.dispatch import dispatch_lock
from locks.models import AccessCode, Activity, CodeStatus, CodeType, LockCommand
from locks.people import people_code_create, people_code_remove, people_code_update
from locks.tick import tick
from tests import factories
from tests.locks.conftest import T0


def _dispatch(place, now):
    """The worker's turn on each lock (what the queued dispatch task does after commit)."""
    for lock in (place.native, place.jit):
        dispatch_lock(lock_id=lock.pk, now=now)


def test_it_programs_an_ongoing_code_on_every_lock_of_the_property_now_with_one_pin(place, cloud):
    codes = people_code_create(property=place.property, purpose="cleaner", holder_name="Maria Lopes",
                               actor=None, now=T0)
    _dispatch(place, T0)

    assert {code.lock_id for code in codes} == {place.native.pk, place.jit.pk}
    for code in codes:
        code.refresh_from_db()
        assert code.status == CodeStatus.SET
        assert code.booking_id is None and code.purpose == "cleaner" and code.holder_name == "Maria Lopes"
        assert code.code_type == CodeType.ONGOING and code.starts_at is None and code.ends_at is None
    assert codes[0].pin == codes[1].pin and len(codes[0].pin) == 6
    assert codes[0].common_code_key and codes[0].common_code_key == codes[1].common_code_key
    assert sorted(c.action for c in cloud.sent()) == ["create", "create"]
    assert Activity.objects.filter(verb="code.created", access_code__in=codes).count() == 2


def test_it_programs_a_time_bound_code_at_the_locks_lead_like_a_guests(place, cloud):
    starts_at, ends_at = T0 + timedelta(days=2), T0 + timedelta(days=2, hours=4)
    [code] = people_code_create(lock=place.jit, purpose="maintenance", holder_name="Plumber", pin="583920",
                                starts_at=starts_at, ends_at=ends_at, actor=None, now=T0)

    assert code.pin == "583920" and code.code_type == CodeType.TIME_BOUND
    assert code.program_at == starts_at - timedelta(minutes=60)
    assert code.status == CodeStatus.UNSET and cloud.sent() == []

    tick(now=code.program_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.SET
    tick(now=ends_at)
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"starts_at": T0 + timedelta(days=2), "ends_at": T0 + timedelta(days=1)}, "ends_at"),
        ({"starts_at": T0 + timedelta(days=2)}, "ends_at"),
        ({"starts_at": T0 - timedelta(days=2), "ends_at": T0 - timedelta(days=1)}, "ends_at"),
        ({"pin": "123456"}, "pin"),  # a straight run
        ({"pin": "12"}, "pin"),  # too short for the lock
        ({"pin": "58a920"}, "pin"),
        ({"holder_name": "  "}, "holder_name"),
        ({"purpose": "guest"}, "purpose"),
        ({"purpose": "backup"}, "purpose"),
    ],
)
def test_it_saves_nothing_for_bad_input(place, cloud, changes, field):
    values = {"purpose": "cleaner", "holder_name": "Maria", **changes}
    with pytest.raises(ValidationError) as caught:
        people_code_create(lock=place.jit, actor=None, now=T0, **values)
    assert field in caught.value.message_dict
    assert not AccessCode.objects.exists() and not LockCommand.objects.exists()


def test_it_refuses_a_pin_already_live_on_one_of_the_doors(place, cloud):
    factories.AccessCodeFactory(tenant=place.tenant, lock=place.jit, pin="583920", purpose="staff",
                                code_type="ongoing", starts_at=None, ends_at=None, status=CodeStatus.SET)
    with pytest.raises(ValidationError) as caught:
        people_code_create(property=place.property, purpose="owner", holder_name="Olive", pin="583920",
                           actor=None, now=T0)
    assert "already in use" in caught.value.message_dict["pin"][0]
    assert AccessCode.objects.count() == 1


def test_it_pushes_a_new_window_and_name_and_pin_to_every_door_of_the_code(place, cloud):
    codes = people_code_create(property=place.property, purpose="cleaner", holder_name="Maria",
                               actor=None, now=T0)
    _dispatch(place, T0)
    later = T0 + timedelta(minutes=5)
    people_code_update(code=codes[0], holder_name="Maria Lopes", pin="583920", starts_at=later,
                       ends_at=T0 + timedelta(days=30), actor=None, now=later)
    _dispatch(place, later)

    for code in codes:
        code.refresh_from_db()
        assert code.name == "Maria Lopes" and code.pin == "583920"
        assert code.code_type == CodeType.TIME_BOUND and code.ends_at == T0 + timedelta(days=30)
        assert code.status == CodeStatus.SET
    assert {(c.device, c.pin) for c in cloud.sent("update")} >= {("front", "583920"), ("back", "583920")}


def test_it_removes_a_code_from_its_lock_through_the_queue(place, cloud):
    [code] = people_code_create(lock=place.native, purpose="staff", holder_name="Bob", actor=None, now=T0)
    _dispatch(place, T0)
    people_code_remove(code=code, actor=None, now=T0 + timedelta(minutes=1))
    _dispatch(place, T0 + timedelta(minutes=1))
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVED
    assert [c.action for c in cloud.sent()] == ["create", "delete"]
    assert cloud.codes["front"] == {}
