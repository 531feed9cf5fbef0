"""Creating, changing and cancelling bookings from the pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.models import Booking, BookingStatus
from tests import factories

NEW_YORK = ZoneInfo("America/New_York")


def _form(world, **overrides):
    start = (timezone.now() + timedelta(days=10)).astimezone(NEW_YORK).date()
    data = {
        "property": world.dune.pk,
        "guest_name": "Carla Mendes",
        "guest_phone": "+1 555 0100",
        "guest_email": "carla@example.com",
        "check_in_date": start.isoformat(),
        "check_in_time": "",
        "check_out_date": (start + timedelta(days=3)).isoformat(),
        "check_out_time": "",
        "notes": "",
    }
    data.update(overrides)
    return data


def _field_errors(response, field: str) -> str:
    """The text of the error block rendered right after the field."""
    html = response.content.decode()
    start = html.index(f'id="err_{field}"')
    return html[start : html.index("</div>", start)]


def test_it_creates_a_booking_in_the_propertys_time_zone_with_its_default_times(client, world):
    world.dune.checkin_time, world.dune.checkout_time = "16:00", "10:30"
    world.dune.save()
    client.force_login(world.bob)
    data = _form(world)
    response = client.post(reverse("booking_create", args=["seaside"]), data)
    booking = Booking.objects.get(guest_name="Carla Mendes")
    assert response.status_code == 302
    assert response["Location"] == reverse("booking_detail", args=["seaside", booking.pk])
    check_in = booking.check_in.astimezone(NEW_YORK)
    check_out = booking.check_out.astimezone(NEW_YORK)
    assert (check_in.date().isoformat(), check_in.hour, check_in.minute) == (data["check_in_date"], 16, 0)
    assert (check_out.date().isoformat(), check_out.hour, check_out.minute) == (data["check_out_date"], 10, 30)
    assert booking.tenant == world.seaside
    assert booking.guest_email == "carla@example.com"
    assert booking.activities.filter(verb="booking.created", actor=world.bob).exists()


def test_it_takes_explicit_times_as_wall_clock_time_at_the_property(client, world):
    client.force_login(world.bob)
    client.post(reverse("booking_create", args=["seaside"]), _form(world, check_in_time="18:45", check_out_time="09:15"))
    booking = Booking.objects.get(guest_name="Carla Mendes")
    assert booking.check_in.astimezone(NEW_YORK).time().isoformat() == "18:45:00"
    assert booking.check_out.astimezone(NEW_YORK).time().isoformat() == "09:15:00"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            lambda w, d: {"check_out_date": d["check_in_date"], "check_out_time": "10:00", "check_in_time": "15:00"},
            "check_out_date",
            "Check-out must be after check-in.",
        ),
        (
            lambda w, d: {
                "check_in_date": (timezone.now() - timedelta(days=3)).astimezone(NEW_YORK).date().isoformat()
            },
            "check_in_date",
            "Check-in is in the past.",
        ),
        (
            lambda w, d: {
                "check_in_date": (timezone.now() - timedelta(days=9)).astimezone(NEW_YORK).date().isoformat(),
                "check_out_date": (timezone.now() - timedelta(days=5)).astimezone(NEW_YORK).date().isoformat(),
            },
            "check_out_date",
            "Check-out is in the past.",
        ),
        (lambda w, d: {"property": w.harbor_property.pk}, "property", "Unknown property."),
        (lambda w, d: {"property": "999999"}, "property", "Unknown property."),
        (lambda w, d: {"guest_name": ""}, "guest_name", "Enter the guest&#x27;s name."),
        (lambda w, d: {"guest_email": "not-an-email"}, "guest_email", "Enter a valid email address."),
        (lambda w, d: {"check_in_date": "31/31/2026"}, "check_in_date", "Enter a valid date."),
    ],
)
def test_it_rejects_bad_input_next_to_the_field_and_saves_nothing(client, world, overrides, field, message):
    client.force_login(world.bob)
    data = _form(world)
    data.update(overrides(world, data))
    before = Booking.objects.count()
    response = client.post(reverse("booking_create", args=["seaside"]), data)
    assert response.status_code == 200
    assert message in _field_errors(response, field)
    assert Booking.objects.count() == before


def test_it_rejects_an_overlap_with_a_confirmed_booking_on_the_same_property(client, world):
    client.force_login(world.bob)
    data = _form(world)
    day = datetime.fromisoformat(data["check_in_date"]).date()
    factories.BookingFactory(
        tenant=world.seaside, property=world.dune, guest_name="Dora Early",
        check_in=datetime(day.year, day.month, day.day, 12, tzinfo=NEW_YORK) - timedelta(days=1),
        check_out=datetime(day.year, day.month, day.day, 18, tzinfo=NEW_YORK),
    )
    before = Booking.objects.count()
    response = client.post(reverse("booking_create", args=["seaside"]), data)
    assert "Overlaps the confirmed booking of Dora Early" in _field_errors(response, "check_in_date")
    assert Booking.objects.count() == before


def test_it_allows_the_same_dates_on_another_property_or_over_a_cancelled_booking(client, world):
    client.force_login(world.bob)
    data = _form(world)
    day = datetime.fromisoformat(data["check_in_date"]).date()
    factories.BookingFactory(
        tenant=world.seaside, property=world.dune, guest_name="Gone Guest", status=BookingStatus.CANCELLED,
        check_in=datetime(day.year, day.month, day.day, 15, tzinfo=NEW_YORK),
        check_out=datetime(day.year, day.month, day.day, 15, tzinfo=NEW_YORK) + timedelta(days=2),
    )
    assert client.post(reverse("booking_create", args=["seaside"]), data).status_code == 302
    other = _form(world, property=world.harbor_view.pk, guest_name="Second Guest")
    assert client.post(reverse("booking_create", args=["seaside"]), other).status_code == 302
    assert Booking.objects.filter(guest_name__in=["Carla Mendes", "Second Guest"]).count() == 2


def test_it_changes_the_dates_of_a_booking(client, world):
    client.force_login(world.bob)
    booking = world.other_booking
    data = _form(world, property=world.harbor_view.pk, guest_name=booking.guest_name, check_out_time="12:00")
    response = client.post(reverse("booking_edit", args=["seaside", booking.pk]), data)
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.check_out.astimezone(NEW_YORK).date().isoformat() == data["check_out_date"]
    assert booking.check_out.astimezone(NEW_YORK).hour == 12
    assert booking.activities.filter(verb="booking.updated").exists()


def test_it_lets_a_current_stay_keep_its_past_check_in_when_extended(client, world):
    now = timezone.now()
    quiet = factories.PropertyFactory(tenant=world.seaside, name="Quiet Cabin")
    booking = factories.BookingFactory(
        tenant=world.seaside, property=quiet, guest_name="Here Now",
        check_in=now - timedelta(days=1), check_out=now + timedelta(days=1),
    )
    client.force_login(world.bob)
    form = client.get(reverse("booking_edit", args=["seaside", booking.pk])).context["form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    data["property"] = booking.property.pk
    data["check_out_date"] = (now + timedelta(days=3)).astimezone(NEW_YORK).date().isoformat()
    response = client.post(reverse("booking_edit", args=["seaside", booking.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    booking.refresh_from_db()
    assert booking.check_out > now + timedelta(days=2)


def test_it_does_not_count_a_booking_as_overlapping_itself(client, world):
    client.force_login(world.bob)
    booking = world.booking
    form = client.get(reverse("booking_edit", args=["seaside", booking.pk])).context["form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    data.update(property=booking.property.pk, guest_name="Ana Costa-Silva")
    assert client.post(reverse("booking_edit", args=["seaside", booking.pk]), data).status_code == 302
    booking.refresh_from_db()
    assert booking.guest_name == "Ana Costa-Silva"


def test_it_cancels_a_booking_after_confirmation(client, world):
    client.force_login(world.bob)
    url = reverse("booking_cancel", args=["seaside", world.other_booking.pk])
    page = client.get(url)
    assert b"Yes, cancel the booking" in page.content
    world.other_booking.refresh_from_db()
    assert world.other_booking.status == BookingStatus.CONFIRMED
    response = client.post(url)
    assert response.status_code == 302
    world.other_booking.refresh_from_db()
    assert world.other_booking.status == BookingStatus.CANCELLED


def test_it_lists_bookings_by_tab_and_search(client, world):
    now = timezone.now()
    factories.BookingFactory(tenant=world.seaside, property=world.dune, guest_name="Past Paula",
                             check_in=now - timedelta(days=9), check_out=now - timedelta(days=6))
    factories.BookingFactory(tenant=world.seaside, property=world.dune, guest_name="Current Carl",
                             check_in=now - timedelta(days=1), check_out=now + timedelta(hours=5))
    factories.BookingFactory(tenant=world.seaside, property=world.harbor_view, guest_name="Cancelled Cora",
                             status=BookingStatus.CANCELLED, external_ref="AIR-991")
    client.force_login(world.bob)
    url = reverse("booking_list", args=["seaside"])

    def names(**params):
        return {b.guest_name for b in client.get(url, params).context["bookings"]}

    assert names() == {"Ana Costa", "Ben Okafor"}
    assert names(tab="current") == {"Current Carl"}
    assert names(tab="past") == {"Past Paula"}
    assert names(tab="cancelled") == {"Cancelled Cora"}
    assert names(tab="cancelled", q="air-99") == {"Cancelled Cora"}
    assert names(q="okafor") == {"Ben Okafor"}
    partial = client.get(url, {"q": "ana"}, headers={"HX-Request": "true"})
    assert b'id="results"' in partial.content and b"<html" not in partial.content


def test_it_keeps_the_guest_s_language_for_their_messages(client, world):
    client.force_login(world.bob)
    client.post(reverse("booking_create", args=["seaside"]), _form(world, guest_name="Inês Sá", language=" PT "))
    booking = Booking.objects.get(guest_name="Inês Sá")
    assert booking.language == "pt"

    edit = client.get(reverse("booking_edit", args=["seaside", booking.pk])).content.decode()
    assert 'name="language"' in edit and 'value="pt"' in edit
