from __future__ import annotations

import pytest
from django.urls import reverse


@pytest.fixture
def page_urls(world):
    """Every page of this area, as (name, url) for tenant Seaside, on objects olive may also see."""
    slug = "seaside"
    return {
        "dashboard": reverse("dashboard", args=[slug]),
        "property_list": reverse("property_list", args=[slug]),
        "property_detail": reverse("property_detail", args=[slug, world.dune.pk]),
        "booking_list": reverse("booking_list", args=[slug]),
        "booking_detail": reverse("booking_detail", args=[slug, world.booking.pk]),
        "lock_list": reverse("locks:lock_list", args=[slug]),
        "lock_detail": reverse("locks:lock_detail", args=[slug, world.lock.pk]),
        "issue_list": reverse("locks:issue_list", args=[slug]),
        "owner_home": reverse("owner_home", args=[slug]),
        "code_chip": reverse("locks:code_chip", args=[slug, world.code.pk]),
    }


@pytest.fixture
def editor_pages(world):
    slug = "seaside"
    return {
        "booking_create": reverse("booking_create", args=[slug]),
        "booking_edit": reverse("booking_edit", args=[slug, world.booking.pk]),
        "booking_cancel": reverse("booking_cancel", args=[slug, world.booking.pk]),
        "lock_delete_all": reverse("locks:lock_delete_all", args=[slug, world.lock.pk]),
    }
