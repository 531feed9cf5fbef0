"""One time format in the reader's zone, relative hints, chips that say "Scheduled on the lock" and stop
polling, and the booking page's buttons that follow its codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from locks.models import CodeStatus
from portal.times import ago, clock_time, local_time

NOW = datetime(2031, 7, 1, 12, 0, tzinfo=UTC)


def test_it_writes_a_time_in_the_given_zone_with_its_abbreviation():
    moment = datetime(2031, 7, 1, 19, 0, tzinfo=UTC)
    assert local_time(moment, "America/New_York", now=NOW) == "Tue Jul 1, 15:00 EDT"
    assert local_time(moment, "Europe/Lisbon", now=NOW) == "Tue Jul 1, 20:00 WEST"
    assert local_time(datetime(2032, 1, 5, 9, 0, tzinfo=UTC), "America/New_York", now=NOW) == (
        "Mon Jan 5 2032, 04:00 EST"
    )
    assert clock_time(moment, "America/New_York") == "15:00:00 EDT"
    assert local_time(None, "America/New_York") == ""
    assert local_time(moment, "Not/AZone", now=NOW) == "Tue Jul 1, 19:00 UTC"  # a bad name never breaks a page


def test_it_gives_short_relative_hints():
    assert ago(NOW - timedelta(seconds=10), now=NOW) == "just now"
    assert ago(NOW - timedelta(minutes=12), now=NOW) == "12 min ago"
    assert ago(NOW + timedelta(hours=3), now=NOW) == "in 3 h"
    assert ago(NOW - timedelta(days=3), now=NOW) == "3 d ago"


def test_no_template_feeds_a_formatted_time_to_the_date_filter():
    # `local` returns words now; `|local:tz|date:"…"` would print nothing.
    for path in Path(settings.BASE_DIR, "templates").rglob("*.*"):
        assert not re.search(r"\|local:[\w.]+\|date", path.read_text()), path


def test_a_preloaded_code_reads_scheduled_on_the_lock_and_does_not_poll(client, world):
    world.code.status = CodeStatus.UNSET
    world.code.is_scheduled_on_device = True
    world.code.program_at = timezone.now() - timedelta(hours=2)
    world.code.save()
    client.force_login(world.bob)
    chip = client.get(reverse("locks:code_chip", args=["seaside", world.code.pk])).content.decode()
    assert "Scheduled on the lock" in chip and "Unset" not in chip
    assert "hx-trigger" not in chip and "spinner" not in chip
    assert b"every 10s" not in client.get(reverse("dashboard", args=["seaside"])).content
    booking = client.get(reverse("booking_detail", args=["seaside", world.booking.pk])).content.decode()
    assert "part=history" not in booking and ">Resend<" not in booking


def test_the_booking_page_refreshes_its_codes_and_buttons_with_its_history(client, world):
    world.code.status = CodeStatus.SETTING
    world.code.save()
    client.force_login(world.bob)
    url = reverse("booking_detail", args=["seaside", world.booking.pk])
    moving = client.get(url, {"part": "history"}, headers={"HX-Request": "true"}).content.decode()
    assert 'id="history"' in moving and f'id="chip-{world.code.pk}"' in moving and ">Resend<" in moving
    assert moving.count("every 3s") == 1  # the section polls; its chips do not poll on their own
    world.code.status = CodeStatus.SET
    world.code.save()
    settled = client.get(url, {"part": "history"}, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in settled and ">Resend<" not in settled and ">New PIN…<" in settled
