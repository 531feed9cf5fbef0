"""People's codes in the portal: staff give a cleaner, maintenance, owner or staff member a code from the
lock page or the property page, change it and remove it; bad input saves nothing; owners may not; another
tenant's ids are 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from locks.models import AccessCode, CodeStatus, CommandAction, LockCommand
from locks.people import people_code_create
from tests import factories
from tests.conftest import client_for


def url(name, *args):
    return reverse(name, args=["seaside", *args])


def _people_codes():
    return AccessCode.objects.filter(booking__isnull=True)


@pytest.fixture
def back_door(world):
    return factories.LockFactory(tenant=world.seaside, property=world.dune, provider_account=world.account,
                                 name="Dune back")


def test_it_creates_an_ongoing_code_on_one_lock_from_the_lock_page(world, client):
    client_for(client, world.bob)
    page = client.get(url("locks:lock_detail", world.lock.pk))
    assert url("locks:people_code_new_on_lock", world.lock.pk) in page.content.decode()

    response = client.post(url("locks:people_code_new_on_lock", world.lock.pk),
                           {"purpose": "cleaner", "holder_name": "Maria Lopes", "pin": ""})

    assert response.status_code == 302
    [code] = _people_codes()
    assert (code.lock, code.purpose, code.holder_name, code.code_type) == (world.lock, "cleaner", "Maria Lopes",
                                                                        "ongoing")
    assert code.status == CodeStatus.SETTING and len(code.pin) == world.seaside.default_code_length
    assert LockCommand.objects.filter(access_code=code, action=CommandAction.CREATE).exists()
    page = client.get(url("locks:lock_detail", world.lock.pk)).content.decode()
    assert "Maria Lopes" in page and f'id="chip-{code.pk}"' in page


def test_it_creates_one_pin_on_every_lock_of_the_property_from_the_property_page(world, client, back_door):
    client_for(client, world.bob)
    assert url("locks:people_code_new_on_property", world.dune.pk) in client.get(
        url("property_detail", world.dune.pk)).content.decode()

    response = client.post(url("locks:people_code_new_on_property", world.dune.pk),
                           {"purpose": "maintenance", "holder_name": "Plumber", "pin": "583920",
                            "starts_at": "2031-03-10T09:00", "ends_at": "2031-03-10T17:00"})

    assert response.status_code == 302
    codes = list(_people_codes().order_by("lock_id"))
    assert [c.lock for c in codes] == [world.lock, back_door]
    zone = ZoneInfo(world.dune.timezone)
    for code in codes:
        assert code.pin == "583920" and code.code_type == "time_bound"
        assert code.starts_at == datetime(2031, 3, 10, 9, 0, tzinfo=zone)
        assert code.ends_at == datetime(2031, 3, 10, 17, 0, tzinfo=zone)
        assert code.status == CodeStatus.UNSET  # programmed at its lead, not now
    assert codes[0].common_code_key == codes[1].common_code_key != ""
    page = client.get(url("property_detail", world.dune.pk)).content.decode()
    assert "Plumber" in page and "Dune back" in page


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"starts_at": "2031-02-30T09:00", "ends_at": "2031-03-02T09:00"}, "Enter a real date and time."),
        ({"starts_at": "2031-03-02T09:00", "ends_at": "2031-03-01T09:00"}, "The end must be after the start."),
        ({"starts_at": "2031-03-02T09:00"}, "needs both a start and an end"),
        ({"pin": "1234"}, "straight run"),
        ({"pin": "48a3"}, "digits only"),
        ({"pin": "483920"}, "already in use"),  # the guest's live PIN on this lock
        ({"holder_name": ""}, "Say who the code is for."),
        ({"purpose": "guest"}, "Choose cleaner, maintenance, owner or staff."),
    ],
)
def test_it_saves_nothing_for_bad_input(world, client, data, field_error):
    client_for(client, world.bob)
    world.code.status = CodeStatus.SET
    world.code.save()
    response = client.post(url("locks:people_code_new_on_lock", world.lock.pk),
                           {"purpose": "cleaner", "holder_name": "Maria", **data})
    assert response.status_code == 400
    assert field_error in response.content.decode().replace("&#x27;", "'")
    assert not _people_codes().exists()


def test_it_refuses_a_pin_taken_on_one_door_of_the_property(world, client, back_door):
    factories.AccessCodeFactory(tenant=world.seaside, lock=back_door, booking=None, pin="583920", purpose="staff",
                                code_type="ongoing", starts_at=None, ends_at=None, status=CodeStatus.SET)
    client_for(client, world.bob)
    response = client.post(url("locks:people_code_new_on_property", world.dune.pk),
                           {"purpose": "owner", "holder_name": "Olive", "pin": "583920"})
    assert response.status_code == 400 and "Dune back" in response.content.decode()
    assert _people_codes().count() == 1


def _a_code(world, lock=None):
    [code] = people_code_create(lock=lock or world.lock, purpose="cleaner", holder_name="Maria", actor=None,
                                now=timezone.now())
    return code


def test_it_changes_name_window_and_pin_through_the_queue(world, client):
    code = _a_code(world)
    LockCommand.objects.filter(access_code=code).update(state="succeeded")
    AccessCode.objects.filter(pk=code.pk).update(status=CodeStatus.SET)
    client_for(client, world.bob)
    assert client.get(url("locks:people_code_edit", code.pk)).status_code == 200

    response = client.post(url("locks:people_code_edit", code.pk),
                           {"holder_name": "Maria Lopes", "pin": "583920", "starts_at": "", "ends_at": ""})

    assert response.status_code == 302
    code.refresh_from_db()
    assert (code.holder_name, code.pin, code.status) == ("Maria Lopes", "583920", CodeStatus.SETTING)
    assert code.purpose == "cleaner"  # fixed once made
    assert LockCommand.objects.filter(access_code=code, action=CommandAction.UPDATE, state="queued").exists()


def test_it_removes_a_code_through_the_queue(world, client):
    code = _a_code(world)
    LockCommand.objects.filter(access_code=code).update(state="succeeded", sent_at=timezone.now())
    AccessCode.objects.filter(pk=code.pk).update(status=CodeStatus.SET, vendor_code_ref="ref-1")
    client_for(client, world.bob)
    response = client.post(url("locks:people_code_remove", code.pk), {"back": "property"})
    assert response.status_code == 302 and response.url == url("property_detail", world.dune.pk)
    code.refresh_from_db()
    assert code.status == CodeStatus.REMOVING
    assert LockCommand.objects.filter(access_code=code, action=CommandAction.DELETE).exists()


def test_owners_may_not_create_change_or_remove_and_do_not_see_the_pins(world, client):
    code = _a_code(world)
    client_for(client, world.olive)
    assert client.post(url("locks:people_code_new_on_lock", world.lock.pk),
                       {"purpose": "owner", "holder_name": "Olive"}).status_code == 403
    assert client.post(url("locks:people_code_new_on_property", world.dune.pk),
                       {"purpose": "owner", "holder_name": "Olive"}).status_code == 403
    assert client.post(url("locks:people_code_edit", code.pk), {"holder_name": "X"}).status_code == 403
    assert client.post(url("locks:people_code_remove", code.pk)).status_code == 403
    assert "People’s codes" not in client.get(url("property_detail", world.dune.pk)).content.decode()
    assert _people_codes().count() == 1
    code.refresh_from_db()
    assert code.holder_name == "Maria" and code.status != CodeStatus.REMOVING


def test_another_tenants_ids_are_404(world, client):
    harbor_code = factories.AccessCodeFactory(tenant=world.harbor, lock=world.harbor_lock, booking=None,
                                              purpose="cleaner", code_type="ongoing", starts_at=None, ends_at=None)
    client_for(client, world.mallory)
    harbor = {"purpose": "cleaner", "holder_name": "Mallory"}
    seaside_code = _a_code(world)
    for target in (url("locks:people_code_new_on_lock", world.lock.pk),
                   url("locks:people_code_new_on_property", world.dune.pk),
                   url("locks:people_code_edit", seaside_code.pk), url("locks:people_code_remove", seaside_code.pk)):
        assert client.post(target, harbor).status_code == 404
    # Mallory's own tenant, with bob's lock id in her URL: still 404, nothing made on either side.
    own = reverse("locks:people_code_new_on_lock", args=["harbor", world.lock.pk])
    assert client.post(own, harbor).status_code == 404
    assert set(_people_codes()) == {seaside_code, harbor_code}


def test_a_guest_code_cannot_be_edited_as_a_persons(world, client):
    client_for(client, world.bob)
    assert client.get(url("locks:people_code_edit", world.code.pk)).status_code == 404


def test_times_are_read_in_the_propertys_zone_not_the_servers(world, client):
    client_for(client, world.bob)
    client.post(url("locks:people_code_new_on_lock", world.lock.pk),
                {"purpose": "staff", "holder_name": "Bob", "starts_at": "2031-07-01T08:00",
                 "ends_at": "2031-07-01T12:00"})
    code = _people_codes().get()
    assert code.starts_at == datetime(2031, 7, 1, 12, 0, tzinfo=UTC)  # 08:00 in New York (EDT)
    assert code.ends_at - code.starts_at == timedelta(hours=4)


def test_its_activity_reads_as_the_persons_code(world, client):
    from locks.models import Activity
    from portal.activity_words import activity_sentence

    code = _a_code(world)
    client_for(client, world.bob)
    client.post(url("locks:people_code_remove", code.pk))
    said = [activity_sentence(a, "UTC") for a in Activity.objects.filter(access_code=code).order_by("id")]
    assert said[0].startswith("Dune front: Maria's cleaner code planned")
    assert "Dune front: Removal of Maria's cleaner code asked for" in said
