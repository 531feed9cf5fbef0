from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from locks.models import CodeStatus, LockIssue
from portal.alerts import alerts_send, digest_send
from portal.models import BookingFeed
from portal.tasks import send_alerts, send_daily_digest
from tests import factories


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def trouble(world, now):
    """An offline lock, a failed code starting tonight, a late code, and a failed code next week."""
    offline = factories.LockIssueFactory(tenant=world.seaside, lock=world.other_lock, kind="device_offline")
    tonight = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, name="Tonight", status=CodeStatus.FAILED,
        starts_at=now + timedelta(hours=10),
    )
    failed = factories.LockIssueFactory(tenant=world.seaside, lock=world.lock, access_code=tonight, kind="nack")
    factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.other_lock, name="Soon", status=CodeStatus.SETTING,
        starts_at=now + timedelta(hours=2), program_at=now - timedelta(hours=1),
    )
    next_week = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, name="Next week", status=CodeStatus.FAILED,
        starts_at=now + timedelta(days=7),
    )
    later = factories.LockIssueFactory(tenant=world.seaside, lock=world.lock, access_code=next_week, kind="nack")
    return offline, failed, later


def test_it_mails_admins_and_staff_once_per_issue(world, trouble, now):
    offline, failed, later = trouble
    assert alerts_send(now=now) == 1
    [message] = mail.outbox
    assert sorted(message.to) == ["alice@example.com", "bob@example.com"]
    assert "Harbor front: Lock offline" in message.body
    tonight = failed.access_code.starts_at.astimezone(ZoneInfo(world.dune.timezone))
    assert (f"Dune front: Lock did not acknowledge — the code “Tonight”: it starts "
            f"{tonight:%a %b} {tonight.day}, {tonight:%H:%M %Z} (in 10 h)") in message.body
    assert "the code “Soon” is not on the lock yet; it starts" in message.body
    assert "UTC" not in message.body  # times are written in each property's zone
    assert "Next week" not in message.body
    assert f"{settings.PUBLIC_BASE_URL}/t/seaside/locks/{world.other_lock.pk}/" in message.body
    assert "Command timed out" not in message.body  # world's issue: its code starts in two days
    assert LockIssue.objects.get(pk=later.pk).alerted_at is None
    assert LockIssue.objects.get(pk=offline.pk).alerted_at == now
    assert LockIssue.objects.get(pk=failed.pk).alerted_at == now
    assert alerts_send(now=now + timedelta(minutes=5)) == 0
    assert len(mail.outbox) == 1


def test_a_new_issue_gets_its_own_mail(world, trouble, now):
    alerts_send(now=now)
    factories.LockIssueFactory(tenant=world.seaside, lock=world.lock, kind="low_battery")
    assert send_alerts() == 1
    assert len(mail.outbox) == 2
    assert "Low battery" in mail.outbox[1].body
    assert "Lock offline" not in mail.outbox[1].body


def test_it_mails_nobody_when_the_tenant_turned_alerts_off(world, trouble, now):
    world.seaside.alert_emails_enabled = False
    world.seaside.save(update_fields=["alert_emails_enabled"])
    assert alerts_send(now=now) == 0
    assert digest_send(now=now) == 0
    assert mail.outbox == []


def test_the_daily_digest_goes_once_a_day(world, trouble, now):
    BookingFeed.objects.create(tenant=world.seaside, property=world.dune, label="Airbnb",
                               url="https://example.com/feed.ics", last_error="The feed answered HTTP 500.")
    assert send_daily_digest() == 1
    [message] = mail.outbox
    assert message.subject == "[Lockstep] Daily digest for Seaside Stays"
    assert "Lock offline" in message.body
    assert "2 other open issue(s)" in message.body  # the world's timeout and next week's NACK
    assert "Dune Cottage: iCal feed “Airbnb” failing — The feed answered HTTP 500." in message.body
    assert digest_send(now=timezone.now()) == 0
    assert digest_send(now=timezone.now() + timedelta(days=1)) == 1


def test_no_digest_when_nothing_is_open(world, now):
    LockIssue.objects.update(status="resolved")
    assert digest_send(now=now) == 0


def test_migrate_scheduled_the_alert_tasks(db):
    from django_q.models import Schedule

    from locks.apps import ensure_schedules as ensure_alert_schedules

    ensure_alert_schedules()  # idempotent: a second run changes nothing
    schedules = {s.func: (s.schedule_type, s.minutes) for s in Schedule.objects.filter(func__startswith="portal.")}
    assert schedules["portal.tasks.send_alerts"] == (Schedule.MINUTES, 5)
    assert schedules["portal.tasks.send_daily_digest"] == (Schedule.DAILY, None)
    assert Schedule.objects.filter(func="portal.tasks.send_alerts").count() == 1
