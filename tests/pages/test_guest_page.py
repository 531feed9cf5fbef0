"""The guest page (issue 13, acceptance 3): one link per booking, no login; each door's code only once the
door confirmed it; gone after check-out; a wrong, replaced, turned-off or expired link is the same 404;
"My code doesn't work" queues a read, opens an urgent issue and shows a backup code where a pool exists;
nothing of any other stay or of the tenant's staff on the page; PINs never in Activity text."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from locks.models import (
    AccessCode,
    Activity,
    CodePurpose,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    LockIssue,
    Verification,
)
from portal.guest_links import guest_link_create, guest_link_issue, guest_link_revoke
from portal.models import BookingStatus
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CHECK_IN = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
CHECK_OUT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
FRONT_PIN, BACK_PIN, OTHER_PIN, BACKUP_PIN = "482913", "739164", "615283", "927461"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def stay(db):
    """Ana's stay at Dune Cottage (Lisbon time): the front door's code is set, the back door's is setting."""
    tenant = factories.TenantFactory(name="Coastline Rentals")
    prop = factories.PropertyFactory(tenant=tenant, name="Dune Cottage", timezone="Europe/Lisbon",
                                     guest_instructions="The key safe is left of the blue gate.")
    front = factories.LockFactory(tenant=tenant, property=prop, name="Front door")
    back = factories.LockFactory(tenant=tenant, property=prop, name="Back door")
    booking = factories.BookingFactory(tenant=tenant, property=prop, guest_name="Ana Costa", check_in=CHECK_IN,
                                       check_out=CHECK_OUT)
    for lock, pin, status in ((front, FRONT_PIN, CodeStatus.SET), (back, BACK_PIN, CodeStatus.SETTING)):
        factories.AccessCodeFactory(tenant=tenant, lock=lock, booking=booking, pin=pin, status=status,
                                    name="Ana Costa", starts_at=CHECK_IN - timedelta(minutes=30),
                                    ends_at=CHECK_OUT + timedelta(minutes=30),
                                    verification=Verification.VENDOR_ACK if status == CodeStatus.SET else
                                    Verification.NONE)
    url = guest_link_create(booking=booking, now=NOW)
    return {"tenant": tenant, "prop": prop, "front": front, "back": back, "booking": booking,
            "path": url[url.index("/g/"):]}


def test_it_shows_a_code_only_on_the_door_that_confirmed_it(client, stay):
    response = client.get(stay["path"])

    page = response.content.decode()
    assert response.status_code == 200
    assert "Dune Cottage" in page and "The key safe is left of the blue gate." in page
    assert FRONT_PIN in page and BACK_PIN not in page
    assert "Being set up" in page
    assert "Tue Dec 1, 15:00 WET" in page  # check-in in the property's time


def test_a_preloaded_code_confirmed_on_the_lock_is_shown_with_when_it_starts_working(client, stay):
    AccessCode.objects.filter(lock=stay["back"]).update(status=CodeStatus.UNSET, is_scheduled_on_device=True)

    page = client.get(stay["path"]).content.decode()

    assert BACK_PIN in page and "works from" in page


def test_once_the_back_door_confirms_both_codes_show(client, stay):
    AccessCode.objects.filter(lock=stay["back"]).update(status=CodeStatus.SET, verification=Verification.READ_BACK)

    page = client.get(stay["path"]).content.decode()

    assert FRONT_PIN in page and BACK_PIN in page and "Being set up" not in page


def test_after_check_out_the_codes_are_gone(client, stay, clock):
    clock.move_to(CHECK_OUT + timedelta(hours=2))

    page = client.get(stay["path"]).content.decode()

    assert "Your stay has ended" in page
    assert FRONT_PIN not in page and BACK_PIN not in page
    assert "doesn't work" not in page


def not_found(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 404
    return response.content.decode()


def test_a_wrong_an_expired_a_replaced_and_a_turned_off_link_are_the_same_404(client, stay, clock):
    wrong = not_found(client, "/g/" + "x" * 43 + "/")
    booking = stay["booking"]
    newer = guest_link_create(booking=booking, now=NOW)
    replaced = not_found(client, stay["path"])
    newer_path = newer[newer.index("/g/"):]
    assert client.get(newer_path).status_code == 200
    clock.move_to(CHECK_OUT + timedelta(days=1, minutes=1))
    expired = not_found(client, newer_path)
    clock.move_to(NOW)
    guest_link_revoke(booking=booking, now=NOW)
    turned_off = not_found(client, newer_path)

    assert wrong == replaced == expired == turned_off
    assert "Dune Cottage" not in wrong


def test_a_cancelled_stays_link_is_the_same_404(client, stay):
    stay["booking"].status = BookingStatus.CANCELLED
    stay["booking"].save(update_fields=["status"])

    assert "does not work" in not_found(client, stay["path"])


def test_the_link_token_is_long_random_and_only_its_hash_is_stored(stay):
    booking = stay["booking"]
    token = stay["path"].split("/")[2]
    booking.refresh_from_db()

    assert len(token) >= 43  # 32 random bytes
    assert token not in booking.guest_link_hash and len(booking.guest_link_hash) == 64
    assert guest_link_issue(booking) != stay["path"]


def test_the_page_shows_nothing_of_another_stay_or_of_the_tenants_staff(client, stay):
    tenant, prop = stay["tenant"], stay["prop"]
    factories.MembershipFactory(tenant=tenant, user=factories.UserFactory(username="bob-the-staffer"))
    other = factories.BookingFactory(tenant=tenant, property=prop, guest_name="Zed Other",
                                     check_in=CHECK_OUT + timedelta(days=1), check_out=CHECK_OUT + timedelta(days=3))
    factories.AccessCodeFactory(tenant=tenant, lock=stay["front"], booking=other, pin=OTHER_PIN,
                                status=CodeStatus.SET)

    page = client.get(stay["path"]).content.decode()

    for secret in ("Zed Other", OTHER_PIN, "bob-the-staffer", "Coastline Rentals", "simulator", "Lockstep"):
        assert secret not in page


def test_the_page_is_rate_limited_per_address(client, stay, settings):
    settings.GUEST_PAGE_REQUESTS_PER_MINUTE = 3
    statuses = [client.get(f"/g/guess-{n}/").status_code for n in range(3)]
    refused = client.get(stay["path"])

    assert statuses == [404, 404, 404]
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert FRONT_PIN not in refused.content.decode()


def report(client, stay, words: str = "The keypad blinks red"):
    page = client.get(stay["path"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    return client.post(stay["path"] + "report/", {"report": words, "csrfmiddlewaretoken": token})


def test_my_code_doesnt_work_queues_a_read_and_opens_an_urgent_issue(
    client, stay, django_capture_on_commit_callbacks, mailoutbox, monkeypatch
):
    factories.MembershipFactory(tenant=stay["tenant"], user=factories.UserFactory(username="bob"))
    monkeypatch.setattr("locks.commands.enqueue_dispatch", lambda lock_id: None)  # no worker sends the read
    with django_capture_on_commit_callbacks(execute=True):
        response = report(client, stay)

    assert response.status_code == 302 and response["Location"].endswith("?reported=1")
    for lock in (stay["front"], stay["back"]):
        assert LockCommand.objects.filter(lock=lock, action=CommandAction.READ_CODES,
                                          state=CommandState.QUEUED).count() == 1
        issue = LockIssue.objects.get(lock=lock, kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING)
        assert issue.status == IssueStatus.OPEN and "The keypad blinks red" in issue.detail
    from portal.alerts import urgent_issues
    assert urgent_issues(tenant=stay["tenant"], now=NOW).filter(
        kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING).count() == 2
    assert "your host has been told" in client.get(response["Location"]).content.decode()
    assert len(mailoutbox) == 1 and "says their code does not work" in mailoutbox[0].body  # mailed at once
    assert FRONT_PIN not in mailoutbox[0].body and FRONT_PIN not in str(mailoutbox[0].extra_headers)


def test_the_report_needs_the_csrf_token(stay):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(stay["path"] + "report/", {"report": "help"})

    assert response.status_code == 403
    assert not LockIssue.objects.filter(kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING).exists()


def test_a_pool_door_hands_the_guest_a_backup_code_confirmed_on_that_door(client, stay):
    prop = stay["prop"]
    prop.backup_pool_size = 1
    prop.save(update_fields=["backup_pool_size"])
    spare = factories.AccessCodeFactory(tenant=stay["tenant"], lock=stay["back"], purpose=CodePurpose.BACKUP,
                                        holder_name="Backup", pin=BACKUP_PIN, status=CodeStatus.SET,
                                        starts_at=None, ends_at=None, name="Backup 1")

    report(client, stay)
    page = client.get(stay["path"]).content.decode()

    spare.refresh_from_db()
    assert spare.booking_id == stay["booking"].pk
    assert BACKUP_PIN in page and "Back door — backup code" in page
    assert Activity.objects.filter(access_code=spare, verb="code.backup_handed_out").exists()


def test_reports_are_limited_per_stay(client, stay, settings):
    settings.GUEST_REPORTS_PER_HOUR = 1
    report(client, stay)

    assert report(client, stay).status_code == 429
    assert LockIssue.objects.get(lock=stay["front"], kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING).occurrences == 1


def test_pins_never_reach_activity_text_or_logs(client, stay, caplog):
    with caplog.at_level(logging.DEBUG):
        client.get(stay["path"])
        report(client, stay, words=f"I typed {FRONT_PIN} and then 4 8 2 9 1 3, nothing")

    texts = [a.message for a in Activity.objects.all()] + [str(a.data) for a in Activity.objects.all()]
    texts += [issue.detail for issue in LockIssue.objects.all()] + [str(i.data) for i in LockIssue.objects.all()]
    for pin in (FRONT_PIN, BACK_PIN, "4 8 2 9 1 3"):
        assert not any(pin in text for text in texts)
        assert pin not in caplog.text
    assert Activity.objects.filter(verb="guest.page_viewed").count() == 1


def test_staff_make_the_link_on_the_booking_page_and_see_it_once(client, stay):
    bob = factories.UserFactory(username="bob")
    factories.MembershipFactory(tenant=stay["tenant"], user=bob)
    client_for(client, bob)
    booking = stay["booking"]
    page_url = reverse("booking_detail", args=[stay["tenant"].slug, booking.pk])

    response = client.post(reverse("guest_link_new", args=[stay["tenant"].slug, booking.pk]))
    first = client.get(page_url).content.decode()
    second = client.get(page_url).content.decode()

    assert response.status_code == 302
    link = re.search(r'value="(http[^"]+/g/[^"]+/)"', first).group(1)
    assert link not in second
    assert client.get(link[link.index("/g/"):]).status_code == 200
    assert client.get(stay["path"]).status_code == 404  # the old link stopped working


def test_mallory_gets_404_on_alices_booking_link_buttons(client, stay):
    mallory = factories.UserFactory(username="mallory")
    other = factories.TenantFactory()
    factories.MembershipFactory(tenant=other, user=mallory, role="admin")
    client_for(client, mallory)

    made = client.post(reverse("guest_link_new", args=[other.slug, stay["booking"].pk]))
    off = client.post(reverse("guest_link_off", args=[other.slug, stay["booking"].pk]))

    assert made.status_code == 404 and off.status_code == 404
    assert client.get(stay["path"]).status_code == 200  # alice's guest link still works


def test_owners_cannot_make_links(client, stay):
    olive = factories.UserFactory(username="olive")
    factories.MembershipFactory(tenant=stay["tenant"], user=olive, role="owner")
    client_for(client, olive)

    response = client.post(reverse("guest_link_new", args=[stay["tenant"].slug, stay["booking"].pk]))

    assert response.status_code in (403, 404)
    assert client.get(stay["path"]).status_code == 200


def test_a_report_from_a_stay_without_codes_still_reaches_staff(client, stay):
    AccessCode.objects.filter(booking=stay["booking"]).delete()

    report(client, stay)

    issues = LockIssue.objects.filter(kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING, access_code__isnull=True)
    assert {issue.lock_id for issue in issues} == {stay["front"].pk, stay["back"].pk}
