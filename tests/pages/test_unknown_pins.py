"""Delete all and reprogram, and adopting a code, when Lockstep does not know a code's PIN (issue "Truth
under fire" 13): the confirmation page says which codes would be lost and asks for their PIN (checked
against the lock's rules) or to drop them; the adopt form offers a PIN field when the lock could not
tell the PIN."""

from __future__ import annotations

import pytest
from django.urls import reverse

from locks.models import (
    AccessCode,
    CodePurpose,
    CodeStatus,
    CodeType,
    CommandAction,
    IssueKind,
    IssueStatus,
    LockCommand,
)
from tests import factories


@pytest.fixture
def cleaner(world) -> AccessCode:
    """A keypad code adopted from a lock that cannot read PINs back: on the lock, PIN unknown."""
    world.lock.pin_readable = False
    world.lock.save()
    return factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, booking=None, purpose=CodePurpose.STAFF, code_type=CodeType.ONGOING,
        name="Cleaner", pin="", status=CodeStatus.SET, vendor_code_ref="3", starts_at=None, ends_at=None,
    )


def confirm_url(world, lock=None) -> str:
    return reverse("locks:lock_delete_all", args=["seaside", (lock or world.lock).pk])


def delete_all_queued(world) -> bool:
    return LockCommand.objects.filter(lock=world.lock, action=CommandAction.DELETE_ALL).exists()


def test_the_confirmation_lists_codes_that_would_be_lost_and_asks_for_their_pin(client, world, cleaner):
    client.force_login(world.bob)

    page = client.get(confirm_url(world)).content.decode()

    assert "will be lost: PIN unknown" in page
    assert f'name="pin_{cleaner.pk}"' in page
    assert f'name="drop_{cleaner.pk}"' in page
    assert "Guests keep their PINs" not in page or "except" in page


def test_the_confirmation_promises_nothing_is_lost_when_every_pin_is_known(client, world):
    client.force_login(world.bob)

    page = client.get(confirm_url(world)).content.decode()

    assert "PIN unknown" not in page


def test_it_refuses_to_clear_the_lock_while_a_lost_code_has_no_pin_and_no_drop(client, world, cleaner):
    client.force_login(world.bob)

    response = client.post(confirm_url(world))

    assert response.status_code == 400
    assert "enter it, or choose to drop the code" in response.content.decode()
    assert not delete_all_queued(world)


@pytest.mark.parametrize("pin", ["12", "12ab56", "111111"])
def test_it_refuses_a_pin_the_lock_would_refuse_and_saves_nothing(client, world, cleaner, pin):
    client.force_login(world.bob)

    response = client.post(confirm_url(world), {f"pin_{cleaner.pk}": pin})

    assert response.status_code == 400
    assert "The PIN" in response.content.decode()
    cleaner.refresh_from_db()
    assert cleaner.pin == ""
    assert not delete_all_queued(world)


def test_it_keeps_a_code_whose_pin_staff_enter(client, world, cleaner):
    client.force_login(world.bob)

    response = client.post(confirm_url(world), {f"pin_{cleaner.pk}": "583726"})

    assert response.status_code == 302
    cleaner.refresh_from_db()
    assert cleaner.pin == "583726"
    assert delete_all_queued(world)


def test_it_drops_a_code_staff_choose_to_lose(client, world, cleaner):
    client.force_login(world.bob)

    response = client.post(confirm_url(world), {f"drop_{cleaner.pk}": "on"})

    assert response.status_code == 302
    cleaner.refresh_from_db()
    assert cleaner.status in (CodeStatus.REMOVING, CodeStatus.REMOVED)
    assert delete_all_queued(world)


def test_mallory_gets_404_on_alices_delete_all_with_pins(client, world, cleaner):
    client.force_login(world.mallory)

    assert client.get(reverse("locks:lock_delete_all", args=["harbor", world.lock.pk])).status_code == 404
    response = client.post(reverse("locks:lock_delete_all", args=["harbor", world.lock.pk]),
                           {f"pin_{cleaner.pk}": "583726"})

    assert response.status_code == 404
    cleaner.refresh_from_db()
    assert cleaner.pin == ""


# --- adopting a code whose PIN the lock cannot tell


@pytest.fixture
def unmanaged(world):
    world.lock.pin_readable = False
    world.lock.save()
    return factories.LockIssueFactory(
        tenant=world.seaside, lock=world.lock, access_code=None, kind=IssueKind.UNMANAGED_CODE,
        data={"codes": [{"vendor_code_ref": "3", "name": "Cleaner", "pin_token": ""}]},
    )


def adopt_url(issue, slug: str = "seaside") -> str:
    return reverse("locks:issue_action", args=[slug, issue.pk, "adopt_code"])


def test_the_adopt_form_offers_a_pin_field_when_the_pin_is_unknown(client, world, unmanaged):
    client.force_login(world.bob)

    page = client.get(reverse("locks:lock_detail", args=["seaside", world.lock.pk])).content.decode()

    assert 'name="pin_3"' in page


def test_adopting_takes_the_pin_staff_enter(client, world, unmanaged):
    client.force_login(world.bob)

    response = client.post(adopt_url(unmanaged), {"pin_3": "583726"})

    assert response.status_code == 302
    code = AccessCode.objects.get(lock=world.lock, vendor_code_ref="3")
    assert code.pin == "583726"


def test_adopting_refuses_a_bad_pin_and_adopts_nothing(client, world, unmanaged):
    client.force_login(world.bob)

    response = client.post(adopt_url(unmanaged), {"pin_3": "12"}, follow=True)

    assert "The PIN must be" in response.content.decode()
    assert not AccessCode.objects.filter(lock=world.lock, vendor_code_ref="3").exists()
    unmanaged.refresh_from_db()
    assert unmanaged.status == IssueStatus.OPEN


def test_mallory_gets_404_adopting_alices_code(client, world, unmanaged):
    client.force_login(world.mallory)

    response = client.post(adopt_url(unmanaged, "harbor"), {"pin_3": "583726"})

    assert response.status_code == 404
    assert not AccessCode.objects.filter(lock=world.lock, vendor_code_ref="3").exists()
