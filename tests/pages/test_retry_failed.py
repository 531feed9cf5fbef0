""""Retry all failed" on a lock and on a property: every failed code goes back in the queue through the
"retry now" path; editors only; another tenant's lock or property is a 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from locks.actions import codes_retry_failed
from locks.models import AccessCode, Activity, CodeStatus, CommandState
from tests import factories


@pytest.fixture
def failed(world):
    """Two failed codes on Dune front, one on Harbor front (another property), all starting tomorrow."""
    tomorrow = timezone.now() + timedelta(days=1)
    world.code.status = CodeStatus.FAILED
    world.code.last_reason = "nack"
    world.code.save()
    world.command.state = CommandState.FAILED  # the failed code's last command failed too
    world.command.save()
    second = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, name="Cleaner", status=CodeStatus.FAILED, pin="257913",
        starts_at=tomorrow, ends_at=tomorrow + timedelta(days=2),
    )
    elsewhere = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.other_lock, booking=world.other_booking, status=CodeStatus.FAILED,
        pin="318642", starts_at=tomorrow, ends_at=tomorrow + timedelta(days=2),
    )
    return world.code, second, elsewhere


def _statuses(*codes: AccessCode) -> list[str]:
    return [AccessCode.objects.get(pk=code.pk).status for code in codes]


def test_it_retries_every_failed_code_of_a_lock_and_no_other(client, world, failed):
    first, second, elsewhere = failed
    client.force_login(world.bob)
    response = client.post(reverse("locks:lock_retry_failed", args=["seaside", world.lock.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("locks:lock_detail", args=["seaside", world.lock.pk])
    assert CodeStatus.FAILED not in _statuses(first, second)
    assert _statuses(elsewhere) == [CodeStatus.FAILED]
    assert set(Activity.objects.filter(verb="code.retry_now").values_list("access_code", flat=True)) == {
        first.pk, second.pk
    }
    assert "2 failed codes sent again" in client.get(response["Location"]).content.decode()


def test_it_retries_every_failed_code_of_a_property(client, world, failed):
    first, second, elsewhere = failed
    client.force_login(world.alice)
    response = client.post(reverse("locks:property_retry_failed", args=["seaside", world.harbor_view.pk]))
    assert response.status_code == 302
    assert _statuses(first, second) == [CodeStatus.FAILED, CodeStatus.FAILED]
    assert _statuses(elsewhere) != [CodeStatus.FAILED]


def test_it_says_so_when_nothing_failed(client, world):
    client.force_login(world.bob)
    response = client.post(reverse("locks:lock_retry_failed", args=["seaside", world.lock.pk]), follow=True)
    assert "No failed code to retry." in response.content.decode()
    assert not Activity.objects.filter(verb="code.retry_now").exists()


def test_the_buttons_show_only_where_something_failed_and_only_to_editors(client, world, failed):
    lock_url = reverse("locks:lock_detail", args=["seaside", world.lock.pk])
    property_url = reverse("property_detail", args=["seaside", world.dune.pk])
    client.force_login(world.bob)
    assert "Retry all failed (2)" in client.get(lock_url).content.decode()
    assert "Retry all failed (2)" in client.get(property_url).content.decode()
    AccessCode.objects.filter(status=CodeStatus.FAILED).update(status=CodeStatus.SET)
    assert "retry-failed" not in client.get(lock_url).content.decode()
    assert "retry-failed" not in client.get(property_url).content.decode()
    AccessCode.objects.filter(pk=world.code.pk).update(status=CodeStatus.FAILED)
    client.force_login(world.olive)
    assert "retry-failed" not in client.get(lock_url).content.decode()
    assert "retry-failed" not in client.get(property_url).content.decode()


def test_olive_gets_403_and_nothing_is_retried(client, world, failed):
    client.force_login(world.olive)
    assert client.post(reverse("locks:lock_retry_failed", args=["seaside", world.lock.pk])).status_code == 403
    assert client.post(reverse("locks:property_retry_failed", args=["seaside", world.dune.pk])).status_code == 403
    assert _statuses(*failed) == [CodeStatus.FAILED] * 3


def test_mallory_gets_404_and_nothing_is_retried(client, world, failed):
    client.force_login(world.mallory)
    for slug in ("seaside", "harbor"):
        assert client.post(reverse("locks:lock_retry_failed", args=[slug, world.lock.pk])).status_code == 404
        assert client.post(reverse("locks:property_retry_failed", args=[slug, world.dune.pk])).status_code == 404
    assert _statuses(*failed) == [CodeStatus.FAILED] * 3


def test_it_refuses_a_get(client, world, failed):
    client.force_login(world.bob)
    assert client.get(reverse("locks:lock_retry_failed", args=["seaside", world.lock.pk])).status_code == 405
    assert _statuses(*failed) == [CodeStatus.FAILED] * 3


def test_the_action_wants_exactly_one_of_lock_and_property(world):
    now = timezone.now()
    with pytest.raises(ValueError, match="a lock or a property"):
        codes_retry_failed(actor=None, now=now)
    with pytest.raises(ValueError, match="a lock or a property"):
        codes_retry_failed(lock=world.lock, property=world.dune, actor=None, now=now)
