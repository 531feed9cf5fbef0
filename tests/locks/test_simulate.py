"""`manage.py simulate`: a small fleet on a virtual clock keeps every invariant, and a seed repeats."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from portal.models import Tenant
from providers.models import SimulatedDevice

SMALL = ["--bookings", "6", "--locks", "4", "--days", "3"]


def simulate(*args: str) -> dict:
    out = StringIO()
    call_command("simulate", *SMALL, *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


# transactional_db: the engine and the webhook intake queue their follow-up work on commit.
@pytest.mark.django_db(transaction=True)
def test_it_sets_every_code_in_its_window_with_one_create_and_one_delete_when_nothing_fails():
    report = simulate("--faults", "none", "--seed", "3", "--check")  # --check exits non-zero otherwise

    assert report["started"] > 0 and report["set_in_window"] == report["started"]
    assert report["codes"] == report["by_status"]["removed"]
    assert report["vendor_calls"]["create"] == report["vendor_calls"]["delete"] == report["codes"]
    assert (report["unexplained"], report["silently_wrong"], report["double_sends"], report["left_after_end"],
            report["duplicate_pins_on_lock"]) == (0, 0, 0, 0, 0)
    assert 0 < report["first_use_recorded"] <= 6  # simulated guests arrived and the locks said so
    # Guests were told their codes, each PIN held by its door when it was sent.
    assert report["messages_sent"] > 0
    assert (report["messages_unconfirmed_pin"], report["guests_not_told_unexplained"]) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_the_same_seed_gives_the_same_report_and_the_fleet_is_removed_afterwards():
    first, second = simulate("--faults", "harsh", "--seed", "11"), simulate("--faults", "harsh", "--seed", "11")

    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert first["vendor_calls"]["create"] > first["codes"]  # harsh faults did cost retries
    assert not Tenant.objects.filter(slug__startswith="sim-11-").exists()
    assert not SimulatedDevice.objects.exists()


def test_check_names_every_broken_invariant():
    from locks.management.commands.simulate import invariant_problems

    report = {"started": 10, "set_in_window": 8, "late_with_issue": 1, "unexplained": 1, "silently_wrong": 0,
              "duplicate_pins_on_lock": 0, "double_sends": 2, "left_after_end": 0, "first_use_recorded": 3}

    problems = invariant_problems(report, faults="none", per_code=[{"code": 1, "create": 2, "delete": 1}])

    assert problems == [
        "unexplained = 1", "double_sends = 2", "set_in_window + late_with_issue != started",
        "set_in_window 8 < 95 % of started 10", "with no faults every started code must be set in its window",
        "1 ended codes without exactly one create and one delete, e.g. [{'code': 1, 'create': 2, 'delete': 1}]",
    ]
    assert invariant_problems({**report, "set_in_window": 10, "late_with_issue": 0, "unexplained": 0,
                               "double_sends": 0}, faults="default", per_code=[]) == []


def test_check_fails_when_no_guests_entry_was_recorded():
    from locks.management.commands.simulate import invariant_problems

    report = {"started": 10, "set_in_window": 10, "late_with_issue": 0, "unexplained": 0, "silently_wrong": 0,
              "duplicate_pins_on_lock": 0, "double_sends": 0, "left_after_end": 0, "first_use_recorded": 0}

    assert invariant_problems(report, faults="default", per_code=[]) == [
        "first_use_recorded = 0: no guest's entry reached a booking"]
    assert invariant_problems({**report, "first_use_recorded": 1}, faults="default", per_code=[]) == []


def test_a_run_with_real_workers_reports_coverage_but_fails_only_on_the_invariants():
    from locks.management.commands.simulate import invariant_problems

    report = {"unexplained": 0, "silently_wrong": 0, "duplicate_pins_on_lock": 0, "double_sends": 0,
              "left_after_end": 0, "started": 26, "set_in_window": 24, "late_with_issue": 2, "first_use_recorded": 9}
    assert invariant_problems(report, faults="default", per_code=[]) == [
        "set_in_window 24 < 95 % of started 26"]
    assert invariant_problems(report, faults="default", per_code=[], coverage_floor=False) == []
    late_without_issue = {**report, "unexplained": 2, "late_with_issue": 0}
    assert invariant_problems(late_without_issue, faults="default", per_code=[], coverage_floor=False)


@pytest.mark.django_db
def test_it_refuses_a_database_where_another_tenant_has_engine_work(world):
    """The tick and sweep act on every tenant: a run beside another's live codes would drive them on the
    simulation's clock (seen: one run's workers removed another run's codes a day and a half early)."""
    from django.core.management import CommandError

    from locks.models import AccessCode

    with pytest.raises(CommandError, match="needs a database of its own") as refused:
        call_command("simulate", "--bookings", "2", "--locks", "1", "--days", "1", stdout=StringIO())
    assert "seaside" in str(refused.value)
    assert not Tenant.objects.filter(slug__startswith="sim-").exists()  # nothing was built
    assert AccessCode.objects.get(pk=world.code.pk).status == world.code.status  # nor touched


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the advisory lock is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_second_run_on_the_same_database_is_refused_while_the_first_holds_it():
    import psycopg
    from django.core.management import CommandError

    from locks.management.simulation.exclusive import SIMULATION_LOCK_KEY

    db = connection.settings_dict
    other = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                            dbname=db["NAME"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [SIMULATION_LOCK_KEY])
        with pytest.raises(CommandError, match="another `simulate` run is using this database"):
            call_command("simulate", "--bookings", "2", "--locks", "1", "--days", "1", stdout=StringIO())
        other.execute("SELECT pg_advisory_unlock(%s)", [SIMULATION_LOCK_KEY])
        call_command("simulate", "--bookings", "2", "--locks", "1", "--days", "1", "--faults", "none",
                     stdout=StringIO())
    finally:
        other.close()


def test_a_channel_booking_that_overlaps_a_stay_staff_moved_is_refused_and_counted(db):
    """Seen in the 300-booking harsh run: staff moved a stay into the dates of a booking the channel sent
    later, and the run died of the portal's refusal instead of counting it as the channel would see it."""
    from datetime import timedelta

    from locks.management.simulation.fleet import (
        START,
        Observations,
        _apply_booking_change,
        fleet_build,
        fleet_report,
    )
    from portal.models import Booking

    fleet = fleet_build(bookings=1, locks=2, days=1, faults="none", seed=3)  # its plan is not played
    prop = fleet.properties[0]
    stay = {"property": prop, "guest": "Moved Here", "check_in": START + timedelta(hours=5),
            "check_out": START + timedelta(hours=9), "ref": "moved"}
    _apply_booking_change(fleet, "create", stay, now=START)
    _apply_booking_change(fleet, "create", {**stay, "guest": "Sent Later", "ref": "later",
                                            "check_in": START + timedelta(hours=6)}, now=START)

    assert list(Booking.objects.filter(tenant=fleet.tenant).values_list("external_ref", flat=True)) == ["moved"]
    assert fleet_report(fleet, Observations())["booking_overlaps_refused"] == 1


def test_check_fails_on_a_message_carrying_an_unconfirmed_pin_and_on_guests_not_told_unexplained():
    from locks.management.commands.simulate import invariant_problems

    report = {"started": 10, "set_in_window": 10, "late_with_issue": 0, "unexplained": 0, "silently_wrong": 0,
              "duplicate_pins_on_lock": 0, "double_sends": 0, "left_after_end": 0, "first_use_recorded": 2,
              "messages_sent": 12, "messages_unconfirmed_pin": 1, "guests_not_told_unexplained": 2}

    assert invariant_problems(report, faults="default", per_code=[]) == [
        "messages_unconfirmed_pin = 1", "guests_not_told_unexplained = 2"]
    assert invariant_problems({**report, "messages_sent": 0, "messages_unconfirmed_pin": 0,
                               "guests_not_told_unexplained": 0}, faults="default", per_code=[]) == [
        "messages_sent = 0: no guest was told their code"]


def test_a_message_carrying_a_pin_its_door_does_not_hold_is_counted(db):
    """The detector itself: the portal believes the code is on the door (set), the simulated lock does not
    hold it, and the guest is told — that message is what `messages_unconfirmed_pin` exists to catch."""
    from datetime import timedelta

    from locks.management.simulation.fleet import START, _apply_booking_change, fleet_build
    from locks.management.simulation.guests import GuestLedger, guest_contact, guests_tell, recording_backends
    from locks.models import AccessCode, CodeStatus

    fleet = fleet_build(bookings=1, locks=2, days=1, faults="none", seed=5)  # its plan is not played
    stay = {"property": fleet.properties[0], "guest": "Told Too Soon", "check_in": START + timedelta(hours=5),
            "check_out": START + timedelta(hours=30), "ref": "soon", **guest_contact(1)}
    _apply_booking_change(fleet, "create", stay, now=START)
    codes = AccessCode.objects.filter(booking__external_ref="soon")
    assert codes.count() == 2
    codes.update(status=CodeStatus.SET)  # what a lying status would claim; the simulated locks hold nothing
    ledger = GuestLedger()

    with recording_backends():
        guests_tell(fleet, ledger, now=START + timedelta(minutes=1))

    assert ledger.sent >= 1
    assert sorted({code_id for _, code_id in ledger.unconfirmed}) == sorted(codes.values_list("pk", flat=True))
