"""Who may see which page: alice and bob see all of Seaside, olive only her property (read-only),
mallory none of it (404, the same answer as for a missing row)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from locks.models import Activity, CodeStatus, IssueStatus
from portal.models import Booking

STAFF_PAGES = [
    "dashboard", "property_list", "property_detail", "booking_list", "booking_detail", "lock_list",
    "lock_detail", "issue_list", "owner_home", "code_chip",
]
EDITOR_PAGES = ["booking_create", "booking_edit", "booking_cancel", "lock_delete_all"]


@pytest.mark.parametrize("who", ["alice", "bob"])
@pytest.mark.parametrize("page_name", STAFF_PAGES)
def test_it_renders_every_page_for_staff(client, world, page_urls, who, page_name):
    client.force_login(getattr(world, who))
    response = client.get(page_urls[page_name])
    assert response.status_code == 200


@pytest.mark.parametrize("page_name", EDITOR_PAGES)
def test_it_renders_every_form_for_bob(client, world, editor_pages, page_name):
    client.force_login(world.bob)
    assert client.get(editor_pages[page_name]).status_code == 200


@pytest.mark.parametrize("page_name", STAFF_PAGES + EDITOR_PAGES)
def test_mallory_gets_404_on_every_seaside_page(client, world, page_urls, editor_pages, page_name):
    client.force_login(world.mallory)
    assert client.get({**page_urls, **editor_pages}[page_name]).status_code == 404


def test_mallory_gets_404_for_seaside_ids_under_her_own_tenant(client, world):
    client.force_login(world.mallory)
    for url in [
        reverse("property_detail", args=["harbor", world.dune.pk]),
        reverse("booking_detail", args=["harbor", world.booking.pk]),
        reverse("booking_edit", args=["harbor", world.booking.pk]),
        reverse("locks:lock_detail", args=["harbor", world.lock.pk]),
        reverse("locks:code_chip", args=["harbor", world.code.pk]),
    ]:
        assert client.get(url).status_code == 404, url
    for url in [
        reverse("locks:code_reveal", args=["harbor", world.code.pk]),
        reverse("locks:code_new_pin_preview", args=["harbor", world.code.pk]),
        reverse("locks:code_action", args=["harbor", world.code.pk, "retry_now"]),
        reverse("locks:issue_action", args=["harbor", world.issue.pk, "dismiss"]),
        reverse("locks:lock_action", args=["harbor", world.lock.pk, "reconcile"]),
        reverse("booking_cancel", args=["harbor", world.booking.pk]),
    ]:
        assert client.post(url).status_code == 404, url
    assert not Activity.objects.filter(verb="pin.revealed").exists()
    world.issue.refresh_from_db()
    assert world.issue.status == IssueStatus.OPEN


def test_mallory_sees_her_own_lock_page(client, world):
    client.force_login(world.mallory)
    response = client.get(reverse("locks:lock_detail", args=["harbor", world.harbor_lock.pk]))
    assert response.status_code == 200
    assert b"Old Town door" in response.content


def test_olive_sees_her_property_and_not_the_others(client, world):
    client.force_login(world.olive)
    assert client.get(reverse("property_detail", args=["seaside", world.dune.pk])).status_code == 200
    assert client.get(reverse("property_detail", args=["seaside", world.harbor_view.pk])).status_code == 404
    assert client.get(reverse("booking_detail", args=["seaside", world.other_booking.pk])).status_code == 404
    assert client.get(reverse("locks:lock_detail", args=["seaside", world.other_lock.pk])).status_code == 404
    owner = client.get(reverse("owner_home", args=["seaside"]))
    assert b"Dune Cottage" in owner.content
    assert b"Ana Costa" in owner.content
    assert b"Harbor View Loft" not in owner.content
    assert b"Ben Okafor" not in owner.content
    listing = client.get(reverse("booking_list", args=["seaside"]))
    assert b"Ana Costa" in listing.content and b"Ben Okafor" not in listing.content


def test_it_sends_olive_home_to_the_owner_portal(client, world):
    client.force_login(world.olive)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("owner_home", args=["seaside"])


def test_olive_gets_403_on_every_write_and_nothing_changes(client, world):
    client.force_login(world.olive)
    before = Booking.objects.count()
    for url in [
        reverse("booking_create", args=["seaside"]),
        reverse("booking_edit", args=["seaside", world.booking.pk]),
        reverse("booking_cancel", args=["seaside", world.booking.pk]),
        reverse("locks:lock_delete_all", args=["seaside", world.lock.pk]),
    ]:
        assert client.get(url).status_code == 403, url
    for url in [
        reverse("booking_create", args=["seaside"]),
        reverse("booking_cancel", args=["seaside", world.booking.pk]),
        reverse("locks:code_action", args=["seaside", world.code.pk, "retry_now"]),
        reverse("locks:code_action", args=["seaside", world.code.pk, "new_pin"]),
        reverse("locks:code_new_pin_preview", args=["seaside", world.code.pk]),
        reverse("locks:issue_action", args=["seaside", world.issue.pk, "dismiss"]),
        reverse("locks:lock_action", args=["seaside", world.lock.pk, "reconcile"]),
        reverse("locks:lock_delete_all", args=["seaside", world.lock.pk]),
    ]:
        assert client.post(url, {"guest_name": "X"}).status_code == 403, url
    assert Booking.objects.count() == before
    world.booking.refresh_from_db()
    world.issue.refresh_from_db()
    assert world.booking.status == "confirmed"
    assert world.issue.status == IssueStatus.OPEN


def test_it_hides_action_buttons_from_olive(client, world):
    client.force_login(world.olive)
    booking = client.get(reverse("booking_detail", args=["seaside", world.booking.pk])).content.decode()
    lock = client.get(reverse("locks:lock_detail", args=["seaside", world.lock.pk])).content.decode()
    for html in (booking, lock):
        assert "/act/" not in html
        assert "Cancel booking" not in html
        assert "Delete all and reprogram" not in html
    assert "Reveal" in booking  # the one thing an owner may do


def test_olive_reveals_a_pin_and_it_is_recorded(client, world):
    client.force_login(world.olive)
    response = client.post(reverse("locks:code_reveal", args=["seaside", world.code.pk]))
    assert response.status_code == 200
    assert b"483920" in response.content
    revealed = Activity.objects.get(verb="pin.revealed")
    assert revealed.actor == world.olive
    assert revealed.access_code == world.code


def test_olive_cannot_reveal_a_pin_of_another_property(client, world):
    other = world.other_lock.access_codes.create(
        tenant=world.seaside, name="Ben code", pin="771245", status=CodeStatus.SET
    )
    client.force_login(world.olive)
    assert client.post(reverse("locks:code_reveal", args=["seaside", other.pk])).status_code == 404
    assert not Activity.objects.filter(verb="pin.revealed").exists()


def test_it_refuses_a_pin_reveal_by_get(client, world):
    client.force_login(world.bob)
    assert client.get(reverse("locks:code_reveal", args=["seaside", world.code.pk])).status_code == 405
    assert not Activity.objects.filter(verb="pin.revealed").exists()


def test_it_shows_a_broken_booking_feed_on_the_property_page(client, world):
    from portal.models import BookingFeed

    BookingFeed.objects.create(tenant=world.seaside, property=world.dune, label="Airbnb",
                               url="https://example.com/feed.ics", last_error="feed answered HTTP 500")
    client.force_login(world.bob)
    from django.urls import reverse

    page = client.get(reverse("property_detail", args=["seaside", world.dune.pk])).content.decode()
    assert "Booking feed “Airbnb” failed" in page and "feed answered HTTP 500" in page


def test_it_links_the_csv_import_from_the_bookings_page(client, world):
    from django.urls import reverse

    client.force_login(world.bob)
    page = client.get(reverse("booking_list", args=["seaside"])).content.decode()
    assert reverse("csv_import", args=["seaside"]) in page
