"""Properties in the portal: create, edit (staff: times and buffers), archive, feeds, conflicts; who may
do what; bad input saves nothing; tenant defaults reach the properties that follow them."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from locks.models import AccessCode, CodeStatus, CommandAction, LockCommand
from portal.models import BookingConflict, BookingFeed, Property
from portal.services import booking_create
from tests.conftest import client_for


def url(name, *args):
    return reverse(name, args=["seaside", *args])


GOOD = {"name": "Pine Cabin", "address": "4 Forest Rd", "timezone": "America/Denver", "checkin_time": "16:30",
        "checkout_time": "10:00", "before_minutes": "", "after_minutes": "45", "pin_policy": ""}


@pytest.fixture
def feed(world):
    return BookingFeed.objects.create(tenant=world.seaside, property=world.dune, label="Airbnb",
                                      url="http://127.0.0.1:9/dune.ics")


@pytest.fixture
def conflict(world, feed):
    now = timezone.now()
    return BookingConflict.objects.create(
        tenant=world.seaside, property=world.dune, feed=feed, source="ical", external_ref="x",
        guest_name="Clash", check_in=now, check_out=now + timedelta(days=1), first_seen_at=now, last_seen_at=now,
    )


def pages(world, feed, conflict):
    """(url, method, who may: 'admin' or 'editor')"""
    return [
        (url("property_create"), "get", "admin"),
        (url("property_edit", world.dune.pk), "get", "editor"),
        (url("property_archive", world.dune.pk), "get", "admin"),
        (url("feed_create", world.dune.pk), "get", "admin"),
        (url("feed_sync", world.dune.pk, feed.pk), "post", "editor"),
        (url("feed_delete", world.dune.pk, feed.pk), "post", "admin"),
        (url("conflict_dismiss", world.dune.pk, conflict.pk), "post", "editor"),
    ]


def test_mallory_gets_404_on_every_new_property_page(client, world, feed, conflict):
    client_for(client, world.mallory)
    for path, method, _ in pages(world, feed, conflict):
        # Under her own tenant's URL too: the ids are Seaside's.
        tenant_paths = [path] if path.endswith("/new/") else [path, path.replace("/t/seaside/", "/t/harbor/")]
        for tenant_path in tenant_paths:
            assert getattr(client, method)(tenant_path).status_code == 404, tenant_path
    assert BookingFeed.objects.filter(pk=feed.pk).exists()
    conflict.refresh_from_db()
    assert conflict.resolved_at is None


@pytest.mark.parametrize("who", ["bob", "olive"])
def test_staff_may_only_edit_and_sync_and_owners_may_do_nothing(client, world, feed, conflict, who):
    client_for(client, getattr(world, who))
    for path, method, allowed in pages(world, feed, conflict):
        if who == "bob" and allowed == "editor" and method == "get":
            assert client.get(path).status_code == 200, path
        elif who == "olive" or allowed == "admin":
            assert getattr(client, method)(path).status_code == 403, path
    assert BookingFeed.objects.filter(pk=feed.pk).exists()
    assert Property.objects.get(pk=world.dune.pk).archived_at is None


def test_alice_creates_a_property_with_its_own_times_and_the_tenant_default_buffer(client, world):
    client_for(client, world.alice)
    response = client.post(url("property_create"), GOOD)
    prop = Property.objects.get(name="Pine Cabin")
    assert response.status_code == 302 and response.url == url("property_detail", prop.pk)
    assert (prop.timezone, prop.checkin_time, prop.checkout_time) == ("America/Denver", time(16, 30), time(10))
    assert (prop.before_minutes, prop.after_minutes, prop.pin_policy) == (None, 45, "")
    assert (prop.effective_before_minutes, prop.effective_after_minutes) == (world.seaside.default_before_minutes, 45)
    assert b"Pine Cabin" in client.get(url("property_list")).content


@pytest.mark.parametrize(
    "field, value, words",
    [("timezone", "Mars/Olympus_Mons", "not a known time zone"), ("timezone", "", "time zone."),
     ("checkin_time", "25:61", "Enter a valid time"), ("before_minutes", "-5", "greater than or equal to 0"),
     ("after_minutes", "99999", "less than or equal to 1440"), ("pin_policy", "birthday", "Select a valid choice"),
     ("name", "Dune Cottage", "Another property already has this name")],
)
def test_a_bad_property_form_saves_nothing(client, world, field, value, words):
    client_for(client, world.alice)
    before = Property.objects.count()
    response = client.post(url("property_create"), {**GOOD, field: value})
    assert response.status_code == 400
    assert words in response.content.decode()
    assert Property.objects.count() == before


def test_bob_changes_times_and_buffers_but_not_the_name_or_zone(client, world):
    client_for(client, world.bob)
    form = client.get(url("property_edit", world.dune.pk)).content.decode()
    assert 'name="checkin_time"' in form and 'name="timezone"' not in form and 'name="name"' not in form
    response = client.post(url("property_edit", world.dune.pk), {
        "checkin_time": "14:00", "checkout_time": "10:30", "before_minutes": "90", "after_minutes": "",
        "name": "Renamed", "timezone": "Asia/Tokyo",
    })
    assert response.status_code == 302
    dune = Property.objects.get(pk=world.dune.pk)
    assert (dune.name, dune.timezone, dune.checkin_time, dune.before_minutes) == (
        "Dune Cottage", world.dune.timezone, time(14), 90
    )


def test_a_property_buffer_change_moves_its_future_codes(client, world):
    client_for(client, world.alice)
    code = world.code
    ends_before = code.ends_at
    booking = world.booking
    from locks.planning import codes_sync_for_booking

    codes_sync_for_booking(booking=booking, now=timezone.now())
    code.refresh_from_db()
    client.post(url("property_edit", world.dune.pk), {**GOOD, "name": "Dune Cottage", "timezone": world.dune.timezone,
                                                      "before_minutes": "120", "after_minutes": "5"})
    code.refresh_from_db()
    assert code.starts_at == booking.check_in - timedelta(minutes=120)
    assert code.ends_at == booking.check_out + timedelta(minutes=5) != ends_before


def test_archiving_removes_future_codes_hides_the_property_and_keeps_its_page(client, world):
    client_for(client, world.alice)
    world.code.status = CodeStatus.SET
    world.code.vendor_code_ref = "ref-1"
    world.code.save()
    assert client.post(url("property_archive", world.dune.pk)).status_code == 302
    world.code.refresh_from_db()
    assert world.code.status == CodeStatus.REMOVING
    assert LockCommand.objects.filter(access_code=world.code, action=CommandAction.DELETE).exists()
    link = f'href="{url("property_detail", world.dune.pk)}"'
    assert link not in client.get(url("property_list")).content.decode()
    assert f'value="{world.dune.pk}"' not in client.get(url("booking_create")).content.decode()
    page = client.get(url("property_detail", world.dune.pk))
    assert page.status_code == 200 and b"Archived" in page.content
    with pytest.raises(Exception, match="archived"):
        booking_create(tenant=world.seaside, property=world.dune, guest_name="Late",
                       check_in=timezone.now() + timedelta(days=20), check_out=timezone.now() + timedelta(days=21))


def test_a_feed_is_added_with_a_label_and_a_secret_url_and_removed(client, world):
    client_for(client, world.alice)
    response = client.post(url("feed_create", world.dune.pk), {"label": "Vrbo", "url": "https://ical.vrbo.com/x?s=1"})
    assert response.status_code == 302
    feed = BookingFeed.objects.get(property=world.dune)
    assert (feed.label, feed.url) == ("Vrbo", "https://ical.vrbo.com/x?s=1")
    page = client.get(url("property_detail", world.dune.pk)).content.decode()
    assert "Vrbo" in page and "Sync now" in page and "ical.vrbo.com" not in page  # the link is a secret
    client.post(url("feed_delete", world.dune.pk, feed.pk))
    assert not BookingFeed.objects.exists()


@pytest.mark.parametrize("data, words", [({"label": "", "url": "https://a.example/x.ics"}, "Name the feed"),
                                         ({"label": "Airbnb", "url": "ftp://a.example/x.ics"}, "must be an http(s) URL"),
                                         ({"label": "Airbnb", "url": ""}, "Paste the feed")])
def test_a_bad_feed_form_saves_nothing(client, world, data, words):
    client_for(client, world.alice)
    response = client.post(url("feed_create", world.dune.pk), data)
    assert response.status_code == 400 and words in response.content.decode()
    assert not BookingFeed.objects.exists()


def test_staff_dismiss_a_conflict(client, world, conflict):
    client_for(client, world.bob)
    assert b"Clash" in client.get(url("property_detail", world.dune.pk)).content
    client.post(url("conflict_dismiss", world.dune.pk, conflict.pk))
    conflict.refresh_from_db()
    assert conflict.resolved_at is not None


def test_a_settings_default_change_reaches_every_property_that_does_not_override_it(client, world):
    """Dune follows the tenant's buffers and PIN policy; Harbor View has its own."""
    now = timezone.now()
    Property.objects.filter(pk=world.harbor_view.pk).update(before_minutes=10, pin_policy="random")
    Property.objects.filter(pk=world.dune.pk).update(before_minutes=None, pin_policy="")
    from locks.planning import codes_sync_for_booking

    for booking in (world.booking, world.other_booking):
        booking.refresh_from_db()
        codes_sync_for_booking(booking=booking, now=now)
    client_for(client, world.alice)
    response = client.post(url("settings_defaults"), {
        "timezone": world.seaside.timezone, "default_before_minutes": "180", "default_after_minutes": "30",
        "default_code_length": "6", "default_pin_policy": "phone_last4", "alert_emails_enabled": "on",
    })
    assert response.status_code == 302
    dune_code = AccessCode.objects.get(booking=world.booking, lock=world.lock)
    harbor_code = AccessCode.objects.get(booking=world.other_booking, lock=world.other_lock)
    assert dune_code.starts_at == world.booking.check_in - timedelta(minutes=180)
    assert harbor_code.starts_at == world.other_booking.check_in - timedelta(minutes=10)
    later = now + timedelta(days=30)
    follows, own = (
        booking_create(tenant=world.seaside, property=prop, guest_name="Next", guest_phone="+1 609 555 7319",
                       check_in=later, check_out=later + timedelta(days=2))
        for prop in (world.dune, world.harbor_view)
    )
    assert AccessCode.objects.get(booking=follows).pin == "7319"
    assert AccessCode.objects.get(booking=own).pin != "7319"
