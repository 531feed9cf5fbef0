from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.models import Booking

NY = ZoneInfo("America/New_York")
CSV = """property,guest_name,guest_phone,guest_email,check_in,check_out,external_ref
Dune Cottage,Iris Nakamura,+1 609 555 0101,iris@example.com,2030-07-01,2030-07-05,CSV-1
harbor view loft,Omar Haddad,,,2030-07-02 16:30,2030-07-04 10:00,CSV-2
Dune Cottage,Bad Date,,,2030-02-30,2030-03-02,CSV-3
Atlantis Villa,Nobody,,,2030-07-01,2030-07-03,CSV-4
Old Town Flat,Mallory's Guest,,,2030-07-01,2030-07-03,CSV-5
Dune Cottage,Backwards,,,2030-07-10,2030-07-08,CSV-6
Dune Cottage,,,,2030-07-10,2030-07-12,CSV-7
"""


def upload(client, text, name="bookings.csv"):
    return client.post(
        reverse("csv_import", args=["seaside"]),
        {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")},
    )


def test_it_previews_good_and_bad_rows_without_saving(client, world):
    client.force_login(world.bob)
    response = upload(client, CSV)
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 to create" in html and "5 rejected" in html
    assert "Bad check-in date “2030-02-30”" in html
    assert "Unknown property “Atlantis Villa”" in html
    assert "Unknown property “Old Town Flat”" in html  # another tenant's property
    assert "Check-out must be after check-in." in html
    assert "Missing guest name." in html
    assert not Booking.objects.filter(source="csv").exists()


def test_it_saves_only_the_good_rows_after_confirmation(client, world):
    client.force_login(world.bob)
    upload(client, CSV)
    response = client.post(reverse("csv_import_confirm", args=["seaside"]))
    assert response.status_code == 302
    saved = {b.external_ref: b for b in Booking.objects.filter(source="csv")}
    assert set(saved) == {"CSV-1", "CSV-2"}
    assert saved["CSV-1"].check_in == datetime(2030, 7, 1, 15, 0, tzinfo=NY)
    assert saved["CSV-1"].check_out == datetime(2030, 7, 5, 11, 0, tzinfo=NY)
    assert saved["CSV-2"].check_in == datetime(2030, 7, 2, 16, 30, tzinfo=NY)
    assert saved["CSV-2"].property == world.harbor_view
    # the preview is used once: confirming again saves nothing more
    client.post(reverse("csv_import_confirm", args=["seaside"]))
    assert Booking.objects.filter(source="csv").count() == 2


def test_a_second_import_changes_rows_by_reference(client, world):
    client.force_login(world.bob)
    upload(client, CSV)
    client.post(reverse("csv_import_confirm", args=["seaside"]))
    moved = CSV.replace("2030-07-01,2030-07-05,CSV-1", "2030-07-02,2030-07-05,CSV-1")
    html = upload(client, moved).content.decode()
    assert "1 to change" in html and "1 unchanged" in html and "changes check_in" in html
    client.post(reverse("csv_import_confirm", args=["seaside"]))
    assert Booking.objects.get(external_ref="CSV-1").check_in == datetime(2030, 7, 2, 15, 0, tzinfo=NY)
    assert Booking.objects.filter(source="csv").count() == 2


def test_a_file_without_the_columns_is_refused(client, world):
    client.force_login(world.bob)
    response = upload(client, "name,date\nx,y\n")
    assert response.status_code == 200
    assert "Missing column(s): property, guest_name, check_in, check_out" in response.content.decode()


def test_owner_cannot_import(client, world):
    client.force_login(world.olive)
    assert client.get(reverse("csv_import", args=["seaside"])).status_code == 403
    assert upload(client, CSV).status_code == 403
    assert client.post(reverse("csv_import_confirm", args=["seaside"])).status_code == 403


def test_mallory_gets_404_on_seaside_import(client, world):
    client.force_login(world.mallory)
    assert client.get(reverse("csv_import", args=["seaside"])).status_code == 404
    assert upload(client, CSV).status_code == 404
    assert not Booking.objects.filter(source="csv").exists()


def test_it_reads_semicolon_separated_files(client, world):
    client.force_login(world.bob)
    text = "property;guest_name;check_in;check_out\nDune Cottage;Iris Nakamura;2030-07-01;2030-07-05\n"
    assert "1 to create" in upload(client, text).content.decode()
    client.post(reverse("csv_import_confirm", args=["seaside"]))
    assert Booking.objects.get(source="csv").guest_name == "Iris Nakamura"


def test_an_optional_language_column_sets_the_guest_s_language_and_a_bad_one_is_a_row_error(client, world):
    client.force_login(world.bob)
    text = """property,guest_name,guest_phone,guest_email,check_in,check_out,external_ref,language
Dune Cottage,Iris Nakamura,,iris@example.com,2030-07-01,2030-07-05,CSV-1,pt-BR
Harbor View Loft,Omar Haddad,,,2030-07-02,2030-07-04,CSV-2,<b>
"""
    html = upload(client, text).content.decode()
    assert "1 to create" in html and "Bad language “&lt;b&gt;”" in html

    client.post(reverse("csv_import_confirm", args=["seaside"]))

    assert list(Booking.objects.filter(source="csv").values_list("external_ref", "language")) == [("CSV-1", "pt-br")]
