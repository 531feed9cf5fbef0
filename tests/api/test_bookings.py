from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from locks.models import AccessCode
from portal.models import Booking, BookingStatus

UTC = ZoneInfo("UTC")


def stay(prop, days_ahead=10, nights=3, **extra):
    check_in = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_ahead)
    return {
        "property": prop.pk,
        "guest_name": "Carla Mendes",
        "guest_phone": "+351 912 345 678",
        "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=nights)).isoformat(),
        **extra,
    }


def test_it_creates_a_booking_with_codes(api, keys, world):
    response = api(keys.bob).post("/api/v1/bookings/", stay(world.dune, external_ref="PMS-1"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    booking = Booking.objects.get(pk=body["id"])
    assert (booking.tenant, booking.property, booking.source, booking.external_ref) == (
        world.seaside, world.dune, "api", "PMS-1"
    )
    assert [c["lock"] for c in body["access_codes"]] == [world.lock.pk]


def test_it_rejects_check_out_before_check_in(api, keys, world):
    data = stay(world.dune)
    data["check_out"], data["check_in"] = data["check_in"], data["check_out"]
    response = api(keys.bob).post("/api/v1/bookings/", data, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"check_out": ["Check-out must be after check-in."]}
    assert not Booking.objects.filter(guest_name="Carla Mendes").exists()


def test_it_rejects_a_malformed_date(api, keys, world):
    response = api(keys.bob).post("/api/v1/bookings/", stay(world.dune, check_in="next tuesday"), format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["check_in"]


def test_another_tenants_property_is_an_unknown_property(api, keys, world):
    response = api(keys.bob).post("/api/v1/bookings/", stay(world.harbor_property), format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"property": ["Unknown property."]}


@pytest.mark.parametrize("value", ["abc", 10**12, None])
def test_a_nonsense_property_is_an_unknown_property_or_required(api, keys, world, value):
    response = api(keys.bob).post("/api/v1/bookings/", stay(world.dune, property=value), format="json")
    assert response.status_code == 400
    assert "property" in response.json()["fields"]


def test_a_missing_guest_name_is_a_field_error(api, keys, world):
    data = stay(world.dune)
    del data["guest_name"]
    response = api(keys.bob).post("/api/v1/bookings/", data, format="json")
    assert response.json()["fields"] == {"guest_name": ["This field is required."]}


def test_owner_key_cannot_create_update_or_cancel(api, keys, world):
    client = api(keys.olive)
    assert client.post("/api/v1/bookings/", stay(world.dune), format="json").status_code == 403
    assert client.patch(f"/api/v1/bookings/{world.booking.pk}/", {"guest_name": "X"}, format="json").status_code == 403
    assert client.post(f"/api/v1/bookings/{world.booking.pk}/cancel/").status_code == 403
    assert client.put("/api/v1/bookings/by-ref/R1/", stay(world.dune), format="json").status_code == 403
    world.booking.refresh_from_db()
    assert (world.booking.guest_name, world.booking.status) == ("Ana Costa", BookingStatus.CONFIRMED)


def test_owner_key_reads_only_her_properties_bookings(api, keys, world):
    client = api(keys.olive)
    assert [b["id"] for b in client.get("/api/v1/bookings/").json()["results"]] == [world.booking.pk]
    assert client.get(f"/api/v1/bookings/{world.other_booking.pk}/").status_code == 404


def test_mallory_gets_404_on_alices_booking(api, keys, world):
    client = api(keys.mallory)
    assert client.get(f"/api/v1/bookings/{world.booking.pk}/").status_code == 404
    assert client.patch(f"/api/v1/bookings/{world.booking.pk}/", {"guest_name": "X"}, format="json").status_code == 404
    assert client.post(f"/api/v1/bookings/{world.booking.pk}/cancel/").status_code == 404
    assert client.get("/api/v1/bookings/").json()["count"] == 0


def test_it_filters_bookings(api, keys, world):
    client = api(keys.bob)
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).date()
    api(keys.bob).post("/api/v1/bookings/", stay(world.harbor_view, days_ahead=30), format="json")

    def ids(query):
        response = client.get(f"/api/v1/bookings/?{query}")
        assert response.status_code == 200, response.json()
        return sorted(b["guest_name"] for b in response.json()["results"])

    assert ids(f"property={world.dune.pk}") == ["Ana Costa"]
    assert ids(f"from={in_a_month}") == ["Carla Mendes"]
    assert ids(f"to={in_a_month - timedelta(days=5)}") == ["Ana Costa", "Ben Okafor"]
    assert ids("search=okaf") == ["Ben Okafor"]
    assert ids("status=cancelled") == []


@pytest.mark.parametrize("query", ["from=2026-13-01", "to=soon", "status=maybe", "property=x"])
def test_bad_filters_are_400_with_the_field(api, keys, world, query):
    response = api(keys.bob).get(f"/api/v1/bookings/?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [query.split("=")[0]]


def test_it_moves_a_booking(api, keys, world):
    created = api(keys.bob).post("/api/v1/bookings/", stay(world.dune), format="json").json()
    new_out = (datetime.fromisoformat(created["check_out"]) + timedelta(days=2)).isoformat()
    response = api(keys.bob).patch(f"/api/v1/bookings/{created['id']}/", {"check_out": new_out}, format="json")
    assert response.status_code == 200, response.json()
    booking = Booking.objects.get(pk=created["id"])
    assert booking.check_out == datetime.fromisoformat(new_out)
    assert booking.guest_name == "Carla Mendes"


def test_a_patch_that_puts_check_out_before_check_in_is_400(api, keys, world):
    response = api(keys.bob).patch(
        f"/api/v1/bookings/{world.booking.pk}/",
        {"check_out": (world.booking.check_in - timedelta(days=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["check_out"]


def test_it_cancels_a_booking(api, keys, world):
    created = api(keys.bob).post("/api/v1/bookings/", stay(world.dune), format="json").json()
    response = api(keys.bob).post(f"/api/v1/bookings/{created['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Booking.objects.get(pk=created["id"]).status == BookingStatus.CANCELLED


def test_put_by_ref_ten_times_makes_one_booking_and_one_set_of_codes(api, keys, world):
    data = stay(world.dune)
    statuses = [
        api(keys.bob).put("/api/v1/bookings/by-ref/HM-42/", data, format="json").status_code for _ in range(10)
    ]
    assert statuses == [201] + [200] * 9
    booking = Booking.objects.get(external_ref="HM-42")
    assert AccessCode.objects.filter(booking=booking).count() == 1


def test_put_by_ref_updates_the_same_booking(api, keys, world):
    api(keys.bob).put("/api/v1/bookings/by-ref/HM-43/", stay(world.dune), format="json")
    response = api(keys.bob).put(
        "/api/v1/bookings/by-ref/HM-43/", stay(world.dune, guest_name="Carla M. Mendes"), format="json"
    )
    assert response.status_code == 200
    assert Booking.objects.get(external_ref="HM-43").guest_name == "Carla M. Mendes"
    assert Booking.objects.filter(external_ref="HM-43").count() == 1


def test_put_by_ref_is_per_tenant(api, keys, world):
    api(keys.bob).put("/api/v1/bookings/by-ref/SAME/", stay(world.dune), format="json")
    response = api(keys.mallory).put("/api/v1/bookings/by-ref/SAME/", stay(world.harbor_property), format="json")
    assert response.status_code == 201
    assert Booking.objects.filter(external_ref="SAME").count() == 2


def test_put_by_ref_with_bad_dates_is_400(api, keys, world):
    response = api(keys.bob).put(
        "/api/v1/bookings/by-ref/HM-44/", stay(world.dune, check_out="2020-01-01T00:00:00Z"), format="json"
    )
    assert response.status_code == 400
    assert not Booking.objects.filter(external_ref="HM-44").exists()


def test_the_booking_list_costs_the_same_queries_for_1_or_20_bookings(api, keys, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests import factories

    client = api(keys.bob)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/bookings/").status_code == 200
        return len(ctx.captured_queries)

    queries()  # the first request also records the key's last use
    few = queries()
    for n in range(20):  # one after another: confirmed stays of a property never overlap
        check_in = timezone.now() + timedelta(days=10 + 4 * n)
        booking = factories.BookingFactory(tenant=world.seaside, property=world.dune, check_in=check_in)
        factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, booking=booking)
    assert queries() == few


def test_put_by_ref_on_a_cancelled_booking_is_a_409(api, keys, world):
    created = api(keys.bob).put("/api/v1/bookings/by-ref/HM-45/", stay(world.dune), format="json").json()
    api(keys.bob).post(f"/api/v1/bookings/{created['id']}/cancel/")
    response = api(keys.bob).put("/api/v1/bookings/by-ref/HM-45/", stay(world.dune), format="json")
    assert response.status_code == 409
    assert Booking.objects.get(pk=created["id"]).status == BookingStatus.CANCELLED



def test_a_booking_s_guest_language_is_set_and_changed_through_the_api(api, keys, world):
    created = api(keys.bob).post("/api/v1/bookings/", stay(world.dune, language="pt"), format="json").json()
    assert created["language"] == "pt" and Booking.objects.get(pk=created["id"]).language == "pt"

    response = api(keys.bob).patch(f"/api/v1/bookings/{created['id']}/", {"language": "de-AT"}, format="json")

    assert response.status_code == 200 and Booking.objects.get(pk=created["id"]).language == "de-at"


def test_a_language_that_is_not_a_language_tag_is_a_field_error(api, keys, world):
    response = api(keys.bob).post("/api/v1/bookings/", stay(world.dune, language="<script>"), format="json")
    assert response.status_code == 400 and list(response.json()["fields"]) == ["language"]
    assert not Booking.objects.filter(guest_name="Carla Mendes").exists()
