"""The one-click actions on the booking and lock pages, and the status chip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from locks.dispatch import dispatch_lock
from locks.models import Activity, CodeStatus, IssueKind, IssueStatus, LockCommand
from tests import factories


def test_bob_reveals_a_pin_with_htmx_and_it_is_recorded(client, world):
    client.force_login(world.bob)
    page = client.get(reverse("booking_detail", args=["seaside", world.booking.pk]))
    assert b"483920" not in page.content  # masked until asked
    response = client.post(reverse("locks:code_reveal", args=["seaside", world.code.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"483920" in response.content
    assert b"<html" not in response.content
    assert Activity.objects.filter(verb="pin.revealed", actor=world.bob, access_code=world.code).count() == 1


def test_it_reveals_a_pin_without_javascript_on_the_booking_page(client, world):
    client.force_login(world.bob)
    response = client.post(reverse("locks:code_reveal", args=["seaside", world.code.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "483920" in html and "Ana Costa" in html and "<html" in html


def test_the_chip_polls_while_a_code_is_in_motion_and_stops_when_it_settles(client, world):
    client.force_login(world.bob)
    url = reverse("locks:code_chip", args=["seaside", world.code.pk])
    world.code.status = CodeStatus.SETTING
    world.code.save()
    moving = client.get(url).content.decode()
    assert 'hx-trigger="every 3s"' in moving and f'hx-get="{url}"' in moving
    world.code.status = CodeStatus.SET
    world.code.save()
    settled = client.get(url).content.decode()
    assert "hx-trigger" not in settled and 'data-status="set"' in settled


def test_the_chip_polls_for_an_unset_code_whose_program_time_has_passed(client, world):
    client.force_login(world.bob)
    world.code.program_at = timezone.now() - timedelta(minutes=1)
    world.code.save()
    assert b"every 3s" in client.get(reverse("locks:code_chip", args=["seaside", world.code.pk])).content
    world.code.program_at = timezone.now() + timedelta(hours=3)
    world.code.save()
    assert b"every 3s" not in client.get(reverse("locks:code_chip", args=["seaside", world.code.pk])).content


def test_the_lock_page_shows_each_issue_with_its_playbook_and_actions(client, world):
    client.force_login(world.bob)
    html = client.get(reverse("locks:lock_detail", args=["seaside", world.lock.pk])).content.decode()
    assert "What it means." in html and "What to do, in order" in html
    assert reverse("locks:issue_action", args=["seaside", world.issue.pk, "retry_now"]) in html
    assert reverse("locks:issue_action", args=["seaside", world.issue.pk, "dismiss"]) in html
    assert 'hx-post="' in html and "csrfmiddlewaretoken" in html


def test_dismissing_an_issue_closes_it_and_redirects_back_to_the_lock(client, world):
    client.force_login(world.bob)
    response = client.post(reverse("locks:issue_action", args=["seaside", world.issue.pk, "dismiss"]))
    assert response.status_code == 302
    assert response["Location"] == reverse("locks:lock_detail", args=["seaside", world.lock.pk])
    world.issue.refresh_from_db()
    assert world.issue.status == IssueStatus.DISMISSED
    page = client.get(response["Location"]).content.decode()
    assert "Issue dismissed." in page and "No open issues on this lock." in page


def test_it_refuses_an_action_the_playbook_does_not_offer(client, world):
    client.force_login(world.bob)
    url = reverse("locks:issue_action", args=["seaside", world.issue.pk, "adopt_code"])
    assert client.post(url).status_code == 404
    assert client.post(reverse("locks:issue_action", args=["seaside", world.issue.pk, "drop_tables"])).status_code == 404


def test_retry_now_queues_a_failed_code_again(client, world):
    world.code.status = CodeStatus.FAILED
    world.code.last_reason = "timeout"
    world.code.save()
    world.command.state = "failed"
    world.command.save()
    client.force_login(world.bob)
    before = LockCommand.objects.filter(access_code=world.code).count()
    response = client.post(
        reverse("locks:code_action", args=["seaside", world.code.pk, "retry_now"]),
        {"next": reverse("booking_detail", args=["seaside", world.booking.pk])},
    )
    assert response.status_code == 302
    world.code.refresh_from_db()
    assert world.code.status != CodeStatus.FAILED
    assert LockCommand.objects.filter(access_code=world.code).count() > before
    assert Activity.objects.filter(verb="code.retry_now", actor=world.bob).exists()


def test_an_action_the_engine_refuses_shows_why_and_changes_nothing(client, world):
    world.code.status = CodeStatus.REMOVED
    world.code.save()
    client.force_login(world.bob)
    response = client.post(reverse("locks:code_action", args=["seaside", world.code.pk, "new_pin"]), follow=True)
    assert response.status_code == 200
    assert "cannot get a new PIN" in response.content.decode()
    world.code.refresh_from_db()
    assert world.code.pin == "483920"


def test_it_ignores_an_offsite_next_url(client, world):
    client.force_login(world.bob)
    response = client.post(
        reverse("locks:issue_action", args=["seaside", world.issue.pk, "dismiss"]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("locks:lock_detail", args=["seaside", world.lock.pk])


def test_delete_all_asks_first_and_lists_what_will_be_reprogrammed(client, world):
    issue = factories.LockIssueFactory(tenant=world.seaside, lock=world.lock, kind=IssueKind.DESYNC)
    client.force_login(world.bob)
    via_issue = client.post(reverse("locks:issue_action", args=["seaside", issue.pk, "delete_all_and_reprogram"]))
    confirm_url = reverse("locks:lock_delete_all", args=["seaside", world.lock.pk])
    assert via_issue["Location"] == confirm_url
    page = client.get(confirm_url).content.decode()
    assert world.code.name in page and "Programmed later" in page
    assert not Activity.objects.filter(verb="lock.delete_all").exists()


def test_the_issue_list_filters_by_kind_and_property(client, world):
    factories.LockIssueFactory(tenant=world.seaside, lock=world.other_lock, kind=IssueKind.LOW_BATTERY)
    factories.LockIssueFactory(tenant=world.harbor, lock=world.harbor_lock, kind=IssueKind.LOW_BATTERY)
    client.force_login(world.bob)
    url = reverse("locks:issue_list", args=["seaside"])

    def kinds(**params):
        return sorted((i.kind, i.lock.name) for i in client.get(url, params).context["issues"])

    assert kinds() == [("command_timeout", "Dune front"), ("low_battery", "Harbor front")]
    assert kinds(kind="low_battery") == [("low_battery", "Harbor front")]
    assert kinds(property=str(world.dune.pk)) == [("command_timeout", "Dune front")]


def test_the_dashboard_puts_a_failed_code_in_the_attention_queue(client, world):
    world.code.status = CodeStatus.FAILED
    world.code.last_reason = "nack"
    world.code.save()
    world.other_lock.online = False
    world.other_lock.save()
    client.force_login(world.bob)
    html = client.get(reverse("dashboard", args=["seaside"])).content.decode()
    attention = html[html.index('id="attention-h"') : html.index('id="counts-h"')]
    assert "Ana Costa" in attention and "Harbor front is offline" in attention


def test_the_dashboard_refreshes_itself_only_while_something_moves(client, world):
    client.force_login(world.bob)
    url = reverse("dashboard", args=["seaside"])
    assert b"every 10s" not in client.get(url).content
    world.code.status = CodeStatus.SETTING
    world.code.save()
    assert b"every 10s" in client.get(url).content
    partial = client.get(url, headers={"HX-Request": "true"})
    assert b'id="board"' in partial.content and b"<html" not in partial.content


def test_the_property_page_draws_the_timeline(client, world):
    client.force_login(world.bob)
    html = client.get(reverse("property_detail", args=["seaside", world.dune.pk])).content.decode()
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert "Ana Costa" in svg and "Dune front" in svg and "<title>Now</title>" in svg


def test_it_shows_booking_times_in_the_propertys_time_zone(client, world):
    world.booking.check_in = datetime(2031, 7, 1, 19, 0, tzinfo=UTC)
    world.booking.check_out = datetime(2031, 7, 4, 15, 0, tzinfo=UTC)
    world.booking.save()
    client.force_login(world.bob)
    html = client.get(reverse("booking_detail", args=["seaside", world.booking.pk])).content.decode()
    assert "Tue Jul 1 2031, 15:00 EDT → Fri Jul 4 2031, 11:00 EDT" in html  # New York is UTC−4 in July


def test_the_booking_history_refreshes_itself_only_while_a_code_moves(client, world):
    client.force_login(world.bob)
    url = reverse("booking_detail", args=["seaside", world.booking.pk])
    assert b"part=history" not in client.get(url).content
    world.code.status = CodeStatus.SETTING
    world.code.save()
    assert b"part=history" in client.get(url).content
    partial = client.get(url, {"part": "history"}, headers={"HX-Request": "true"})
    assert b'id="history"' in partial.content and b"<html" not in partial.content


def test_delete_all_clears_the_lock_and_requeues_its_live_codes(client, world):
    world.code.status = CodeStatus.SET
    world.code.vendor_code_ref = "1"
    world.code.starts_at = timezone.now() - timedelta(hours=1)
    world.code.save()
    world.command.state = "succeeded"
    world.command.save()
    client.force_login(world.bob)
    url = reverse("locks:lock_delete_all", args=["seaside", world.lock.pk])
    assert "Sent again right away (1)" in client.get(url).content.decode()
    response = client.post(url)
    assert response["Location"] == reverse("locks:lock_detail", args=["seaside", world.lock.pk])
    # The page queued the work and answered; nothing was sent from the request.
    clear = LockCommand.objects.get(lock=world.lock, action="delete_all", state="queued")
    assert Activity.objects.filter(verb="command.queued", command=clear, actor=world.bob).exists()
    assert not Activity.objects.filter(verb="lock.delete_all").exists()
    page = client.get(reverse("locks:lock_detail", args=["seaside", world.lock.pk])).content.decode()
    assert "Delete all codes" in page and "waiting its turn" in page  # progress shown, polling
    dispatch_lock(lock_id=world.lock.pk, now=timezone.now())  # the worker's turn
    assert Activity.objects.filter(verb="lock.delete_all", command=clear).exists()
    world.code.refresh_from_db()
    assert world.code.status in (CodeStatus.SETTING, CodeStatus.SET)
    assert LockCommand.objects.filter(access_code=world.code, action="create").exclude(pk=world.command.pk).exists()
