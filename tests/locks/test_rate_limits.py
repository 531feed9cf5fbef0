"""Vendor rate limits are token buckets shared by every worker (DESIGN §4): a command over the limit waits
for a token (`not_before`) instead of being sent and refused; a 429 slows its whole scope down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from locks.commands import command_queue
from locks.dispatch import dispatch_lock
from locks.models import AccessCode, Activity, CodeStatus, CommandState, LockCommand
from providers import registry
from providers.base import ProviderError, Reason
from providers.models import Vendor
from tests import factories
from tests.locks.conftest import T0, _place

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def seam(cloud, monkeypatch):
    """Seam (and SmartThings, Schlage) accounts talk to the scripted cloud too (its answers are the test's)."""
    for vendor in (Vendor.SEAM, Vendor.SMARTTHINGS, Vendor.SCHLAGE):
        monkeypatch.setitem(registry.ADAPTERS, vendor, "tests.locks.fakes.FakeProvider")
    return cloud


def _seam_lock(slug: str = "seaside", *, vendor: str = Vendor.SEAM):
    place = _place(factories.TenantFactory(slug=slug, default_code_length=6), with_jit=False)
    place.account.vendor = vendor
    place.account.save(update_fields=["vendor"])
    return place


def _due_codes(place, n: int) -> list[LockCommand]:
    commands = []
    for i in range(n):
        code = factories.AccessCodeFactory(
            tenant=place.tenant, lock=place.native, name=f"Guest {i}", status=CodeStatus.SETTING,
            starts_at=T0 + timedelta(hours=1), ends_at=T0 + timedelta(days=1),
        )
        commands.append(command_queue(code, "create", now=T0))
    return commands


def _sent_in_any_minute(lock) -> int:
    """The most creates sent within any 60 seconds (a sliding window over the send times)."""
    times = sorted(LockCommand.objects.filter(lock=lock, action="create", sent_at__isnull=False)
                   .values_list("sent_at", flat=True))
    return max((sum(1 for t in times if start <= t < start + timedelta(seconds=60)) for start in times), default=0)


@pytest.mark.django_db
def test_it_sends_no_more_than_ten_seam_creates_a_minute_and_the_rest_wait(seam):
    place = _seam_lock()
    _due_codes(place, 30)

    dispatch_lock(lock_id=place.native.pk, now=T0)
    dispatch_lock(lock_id=place.native.pk, now=T0 + timedelta(seconds=30))

    assert len(seam.sent("create")) == 10
    held = LockCommand.objects.filter(state=CommandState.QUEUED).exclude(held_by="")
    assert held.count() == 2  # one per dispatcher run that found the bucket spent
    assert set(held.values_list("not_before", flat=True)) == {T0 + timedelta(seconds=60)}
    assert held.first().held_by == "Seam's rate limit (code creates, 10 a minute per lock)"
    assert Activity.objects.filter(verb="command.held").count() == 2

    for second in range(60, 181, 5):
        dispatch_lock(lock_id=place.native.pk, now=T0 + timedelta(seconds=second))
    assert len(seam.sent("create")) == 30
    assert _sent_in_any_minute(place.native) == 10
    assert not LockCommand.objects.filter(state__in=[CommandState.FAILED, CommandState.QUEUED]).exists()
    assert set(LockCommand.objects.values_list("held_by", flat=True)) == {""}  # cleared when sent


@pytest.mark.django_db
def test_it_keeps_separate_buckets_for_each_seam_device_and_leaves_the_simulator_unlimited(seam):
    place = _seam_lock()
    other = factories.LockFactory(tenant=place.tenant, property=place.property, provider_account=place.account,
                                  vendor_device_id="other", native_scheduling=True,
                                  requirements=place.native.requirements)
    _due_codes(place, 12)
    for _i in range(3):
        code = factories.AccessCodeFactory(tenant=place.tenant, lock=other, status=CodeStatus.SETTING)
        command_queue(code, "create", now=T0)
    simulated = _seam_lock("sim", vendor=Vendor.SIMULATOR)
    _due_codes(simulated, 15)

    for lock in (place.native, other, simulated.native):
        dispatch_lock(lock_id=lock.pk, now=T0)

    assert len([c for c in seam.sent("create") if c.device == "front"]) == 10 + 15
    assert len([c for c in seam.sent("create") if c.device == "other"]) == 3


@pytest.mark.django_db
def test_it_honours_retry_after_on_a_429_for_every_command_of_the_scope(seam):
    place = _seam_lock()
    first, second = _due_codes(place, 2)
    seam.answer("create", ProviderError(Reason.RATE_LIMITED, "slow down", retry_after=300, status_code=429))

    dispatch_lock(lock_id=place.native.pk, now=T0)
    dispatch_lock(lock_id=place.native.pk, now=T0 + timedelta(seconds=5))

    assert len(seam.sent("create")) == 1  # the refused one; the second did not go out to be refused too
    second.refresh_from_db()
    assert second.state == CommandState.QUEUED
    assert second.not_before == T0 + timedelta(seconds=300)
    assert "Seam's rate limit" in second.held_by
    retry = LockCommand.objects.get(access_code_id=first.access_code_id, state=CommandState.QUEUED)
    assert retry.not_before >= T0 + timedelta(seconds=300)

    dispatch_lock(lock_id=place.native.pk, now=T0 + timedelta(seconds=300))
    assert len(seam.sent("create")) >= 2


@pytest.mark.django_db
def test_it_limits_smartthings_per_account_across_its_locks(seam):
    place = _seam_lock(vendor=Vendor.SMARTTHINGS)
    other = factories.LockFactory(tenant=place.tenant, property=place.property, provider_account=place.account,
                                  vendor_device_id="other", native_scheduling=True,
                                  requirements=place.native.requirements)
    _due_codes(place, 15)
    for _i in range(15):
        code = factories.AccessCodeFactory(tenant=place.tenant, lock=other, status=CodeStatus.SETTING)
        command_queue(code, "create", now=T0)

    dispatch_lock(lock_id=place.native.pk, now=T0)
    dispatch_lock(lock_id=other.pk, now=T0)

    assert len(seam.sent("create")) == 20


@pytest.mark.django_db
def test_schlage_is_unlimited_until_configured(seam, settings):
    place = _seam_lock(vendor=Vendor.SCHLAGE)
    _due_codes(place, 4)
    settings.LOCKSTEP = {"SCHLAGE_COMMANDS_PER_MINUTE": 3}

    dispatch_lock(lock_id=place.native.pk, now=T0)

    assert len(seam.sent("create")) == 3
    settings.LOCKSTEP = {}
    dispatch_lock(lock_id=place.native.pk, now=T0)
    assert len(seam.sent("create")) == 3  # the held one waits for the time it was given
    dispatch_lock(lock_id=place.native.pk, now=T0 + timedelta(seconds=60))
    assert len(seam.sent("create")) == 4


@pytest.mark.django_db
def test_the_lock_page_says_a_command_waits_for_the_vendors_limit(seam, client):
    place = _seam_lock()
    _due_codes(place, 11)
    admin = factories.UserFactory(username="ada")
    factories.MembershipFactory(user=admin, tenant=place.tenant, role="staff")
    dispatch_lock(lock_id=place.native.pk, now=T0)
    client.force_login(admin)

    with time_machine.travel(T0 + timedelta(seconds=10), tick=False):
        page = client.get(reverse("locks:lock_detail", args=[place.tenant.slug, place.native.pk]))

    assert page.status_code == 200
    assert "waiting for Seam&#x27;s rate limit (code creates, 10 a minute per lock) until" in page.content.decode()


# --- Three worker processes on one database (or Redis): the limit holds across machines -----------------


def _redis_url() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return "redis://127.0.0.1:6379/15"
    except OSError:
        return None


def _run_three_workers(lock_id: int, *, store: str, redis_url: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    settings_dict = connection.settings_dict
    env["DATABASE_URL"] = (f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD'] or ''}@"
                           f"{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}/"
                           f"{settings_dict['NAME']}")
    wall_start = time.time() + 5  # the shared virtual clock starts once every process is up
    workers = [
        subprocess.Popen([sys.executable, "-m", "tests.locks.rate_limit_worker", str(lock_id), repr(wall_start),
                          "30", store, redis_url], cwd=ROOT, env=env)
        for _ in range(3)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0


def _assert_thirty_creates_within_the_limit(place) -> None:
    commands = LockCommand.objects.filter(lock=place.native, action="create")
    assert commands.filter(state=CommandState.SUCCEEDED).count() == 30
    assert not commands.exclude(state=CommandState.SUCCEEDED).exists()  # none refused (the fake says 429)
    assert not AccessCode.objects.filter(last_reason=Reason.RATE_LIMITED).exists()
    assert _sent_in_any_minute(place.native) <= 10
    pids = {summary.get("pid") for summary in commands.values_list("request_summary", flat=True)}
    assert len(pids) >= 2  # the work really was shared


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="several processes share PostgreSQL, not SQLite")
@pytest.mark.django_db(transaction=True)
def test_three_worker_processes_share_the_seam_limit_in_postgresql():
    place = _seam_lock("three")
    _due_codes(place, 30)

    _run_three_workers(place.native.pk, store="database", redis_url="")

    _assert_thirty_creates_within_the_limit(place)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="several processes share PostgreSQL, not SQLite")
@pytest.mark.skipif(_redis_url() is None, reason="Redis is not reachable on 127.0.0.1:6379")
@pytest.mark.django_db(transaction=True)
def test_three_worker_processes_share_the_seam_limit_in_redis():
    import redis

    url = _redis_url() or ""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("lockstep:ratelimit:*"):
        client.delete(key)
    place = _seam_lock("three-redis")
    _due_codes(place, 30)

    _run_three_workers(place.native.pk, store="redis", redis_url=url)

    _assert_thirty_creates_within_the_limit(place)
    assert client.keys("lockstep:ratelimit:*")  # the bucket was in Redis
