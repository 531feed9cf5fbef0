"""The lock page says why its codes go out when they do (issue 15 "Codes that beat the clock")."""

from __future__ import annotations

from django.urls import reverse

from locks.models import Lock
from tests.conftest import client_for


def _lock_page(client, user, slug, lock) -> tuple[int, str]:
    response = client_for(client, user).get(reverse("locks:lock_detail", args=[slug, lock.pk]))
    return response.status_code, response.content.decode()


def test_bob_reads_why_a_failing_lock_is_programmed_earlier(client, world):
    Lock.objects.filter(pk=world.lock.pk).update(
        lead_minutes=120, lead_basis={"commands": 10, "failed": 3, "slowest_seconds": 20})

    status, page = _lock_page(client, world.bob, "seaside", world.lock)

    assert status == 200
    assert "Programmed 2 h ahead because this lock failed 3 of its last 10 commands." in page


def test_a_healthy_lock_says_it_keeps_the_standard_lead(client, world):
    status, page = _lock_page(client, world.bob, "seaside", world.lock)

    assert status == 200
    assert "Codes are programmed 1 h ahead, the standard lead" in page


def test_the_tenant_maximum_caps_what_the_page_says(client, world):
    world.seaside.max_early_exposure_hours = 3
    world.seaside.save(update_fields=["max_early_exposure_hours"])
    Lock.objects.filter(pk=world.lock.pk).update(
        lead_minutes=420, lead_basis={"commands": 10, "failed": 10, "slowest_seconds": 0})

    _, page = _lock_page(client, world.bob, "seaside", world.lock)

    assert ("Programmed 3 h ahead (the most your tenant allows) because this lock failed 10 of its last 10 "
            "commands.") in page


def test_mallory_gets_404_on_alices_failing_lock(client, world):
    Lock.objects.filter(pk=world.lock.pk).update(
        lead_minutes=120, lead_basis={"commands": 10, "failed": 3, "slowest_seconds": 20})

    assert _lock_page(client, world.mallory, "harbor", world.lock)[0] == 404
    assert _lock_page(client, world.mallory, "seaside", world.lock)[0] == 404
