"""Every page of the portal reads like it is meant for people (DESIGN §7): walked from the URL conf as
alice, on a Seaside with codes in every state, commands, activity and issues, each page shows its times in
the property's or the tenant's zone (New York here: never UTC, never an ISO timestamp) and no raw event
name, both outside a <details> toggle (where the engine's and vendor's own words may keep theirs); every settings page carries the same sub-navigation."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from locks.activity import activity_record
from locks.models import CodeStatus, CommandAction, CommandState, Verification
from tests import factories
from tests.conftest import verified_client_for
from tests.portal.test_tenancy import ROUTES, Targets, build_url, is_admin_area
from tests.portal.test_tenancy import targets as targets

ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
EVENT_NAME = re.compile(
    r"\b(?:access_code|code|command|lock|issue|webhook|pin|alert|provider_account|api_key|member|booking)"
    r"\.[a-z_]+\b"
)
RAW_EVENT_NAMES = ("access_code.scheduled_on_device", "code.status", "command.sent", "webhook.matched")
SUBNAV_LINKS = ("Overview", "Members", "Defaults", "Provider accounts", "API keys")


class VisibleText(HTMLParser):
    """The text a person reads: all of it, and the part outside <details> (shown without a click)."""

    HIDDEN = {"script", "style", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.details_depth = 0
        self.hidden_depth = 0
        self.everywhere: list[str] = []
        self.outside_details: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "details":
            self.details_depth += 1
        elif tag in self.HIDDEN:
            self.hidden_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.details_depth -= 1
        elif tag in self.HIDDEN:
            self.hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.hidden_depth:
            return
        self.everywhere.append(data)
        if not self.details_depth:
            self.outside_details.append(data)


def read(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    return parser


@pytest.fixture
def busy_world(targets: Targets) -> Targets:
    """Codes set, in motion, preloaded, failed and removed; commands that succeeded, failed and are in
    flight; activity of every kind, including a vendor event with its raw name; open issues."""
    world = targets.world
    now = timezone.now()
    tomorrow = now + timedelta(days=1)
    code = world.code
    code.status, code.verification, code.vendor_code_ref = CodeStatus.SET, Verification.READ_BACK, "ac_123"
    code.save()
    preloaded = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, name="Preloaded", status=CodeStatus.UNSET, pin="529173",
        is_scheduled_on_device=True, program_at=now - timedelta(hours=1), starts_at=tomorrow,
        ends_at=tomorrow + timedelta(days=2), vendor_code_ref="ac_456",
    )
    moving = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, name="Moving", status=CodeStatus.SETTING, pin="640285",
        starts_at=tomorrow, ends_at=tomorrow + timedelta(days=1),
    )
    failed = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.lock, booking=world.booking, name="Failed", status=CodeStatus.FAILED,
        pin="718264", last_reason="nack", starts_at=tomorrow, ends_at=tomorrow + timedelta(days=1),
    )
    factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, name="Gone", status=CodeStatus.REMOVED,
                                pin="902817")
    factories.LockCommandFactory(
        tenant=world.seaside, lock=world.lock, access_code=failed, state=CommandState.FAILED, reason="nack",
        vendor_ref="cmd_789", vendor_detail="HTTP 500 from api: {'error': 'Nack'} at 2031-07-01T12:00:00Z",
        finished_at=now,
    )
    factories.LockCommandFactory(
        tenant=world.seaside, lock=world.lock, access_code=moving, state=CommandState.SENT, sent_at=now,
        action=CommandAction.CREATE, vendor_ref="cmd_790",
    )
    factories.LockIssueFactory(tenant=world.seaside, lock=world.lock, access_code=failed, kind="nack",
                               detail="Lock responded Nack")
    a_while = now - timedelta(minutes=30)
    for verb, message, data, subject in [
        ("code.created", "Code for Ana Costa on Dune front planned; programmed at 2031-07-01 15:00 UTC",
         {"starts_at": tomorrow.isoformat(), "ends_at": (tomorrow + timedelta(days=2)).isoformat(),
          "program_at": now.isoformat()}, code),
        ("command.sent", "Create sent to the vendor (attempt 1)", {"action": "create", "attempt": 1}, code),
        ("command.accepted", "Vendor accepted the create (ref cmd_1)", {"vendor_ref": "cmd_1"}, code),
        ("webhook.matched", "Webhook access_code.scheduled_on_device: matched", {"vendor_event_id": "evt_1"},
         preloaded),
        ("code.status", "Code 'Preloaded' on Dune front: setting → unset (webhook)",
         {"from": "setting", "to": "unset", "note": "webhook"}, preloaded),
        ("code.status", "Code 'Ana' on Dune front: setting → set (response)",
         {"from": "setting", "to": "set", "note": "response"}, code),
        ("code.status", "Code 'Failed' on Dune front: setting → failed (nack)",
         {"from": "setting", "to": "failed", "note": "nack"}, failed),
        ("command.failed", "Create failed: nack — Lock responded Nack", {"reason": "nack", "source": "webhook"},
         failed),
        ("issue.opened", "Issue opened: Lock did not acknowledge", {"kind": "nack"}, failed),
    ]:
        activity_record(tenant_id=world.seaside.pk, verb=verb, message=message, now=a_while, code=subject,
                        data=data)
    activity_record(tenant_id=world.seaside.pk, verb="lock.reconciled", message="Reconciled Dune front",
                    now=a_while, lock_id=world.lock.pk,
                    data={"matched": [code.pk], "repushed": [], "desynced": [], "unmanaged": ["ac_999"]})
    return targets


def _pages(targets: Targets, client) -> list[tuple[str, str]]:
    verified_client_for(client, targets.world.alice)  # admin pages need a second factor
    pages = []
    for route in ROUTES:
        url = build_url(route, targets)
        response = client.get(url)
        if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
            pages.append((url, response.content.decode()))
    return pages


def test_every_page_shows_times_in_the_local_zone_and_words_not_event_names(client, busy_world):
    world = busy_world.world
    assert world.seaside.timezone == "America/New_York" and world.dune.timezone == "America/New_York"
    # The walker's objects are Harbor View's; Dune's pages hold the busy codes: visit both.
    extra = [
        reverse("booking_detail", args=["seaside", world.booking.pk]),
        reverse("locks:lock_detail", args=["seaside", world.lock.pk]),
        reverse("property_detail", args=["seaside", world.dune.pk]),
    ]
    pages = _pages(busy_world, client)
    for url in extra:
        pages.append((url, client.get(url).content.decode()))
    assert len(pages) > 15
    for url, html in pages:
        text = read(html)
        # Visible text: what shows without opening a toggle (the engine's and vendor's raw words, which
        # may carry their own UTC or ISO times, sit behind one).
        shown = " ".join(text.outside_details)
        assert "UTC" not in shown, (url, shown[max(0, shown.find("UTC") - 80):shown.find("UTC") + 20])
        assert not ISO_TIME.search(shown), (url, ISO_TIME.search(shown))
        assert not EVENT_NAME.search(shown), (url, EVENT_NAME.search(shown))
    booking = read(dict(pages)[extra[0]])
    shown = " ".join(booking.outside_details)
    assert "Dune front: Ana Costa's code is on the lock, confirmed by the vendor" in shown
    assert "Dune front: The vendor reported on the code “Preloaded”" not in shown  # not on Ana's booking
    lock = " ".join(read(dict(pages)[extra[1]]).outside_details)
    assert "Scheduled on the lock" in lock and "Unset" not in lock
    assert " EDT" in lock or " EST" in lock
    assert "Programming of Ana Costa's code — failed: the lock did not acknowledge it" in lock
    assert any(name in " ".join(read(dict(pages)[extra[0]]).everywhere) for name in RAW_EVENT_NAMES)


def test_the_dashboard_says_what_happened_in_words(client, busy_world):
    world = busy_world.world
    client.force_login(world.alice)
    text = read(client.get(reverse("dashboard", args=["seaside"])).content.decode())
    shown = " ".join(text.outside_details)
    assert "Dune front: The vendor reported on the code “Preloaded”" in shown
    assert "Dune front: The code “Preloaded” is scheduled on the lock" in shown
    assert "Dune front: Checked the lock: 1 code(s) match, 0 sent again, 0 differ" in shown
    assert "access_code.scheduled_on_device" in " ".join(text.everywhere)  # behind the toggle


def test_every_settings_page_has_the_same_sub_navigation(client, busy_world):
    pages = [(url, html) for url, html in _pages(busy_world, client)
             if is_admin_area(url.removeprefix("/").replace("t/seaside/", "t/<slug:tenant_slug>/", 1))]
    assert len(pages) >= 6
    for url, html in pages:
        nav = html[html.index('<nav class="subnav" aria-label="Settings">'):]
        nav = nav[: nav.index("</nav>")]
        for label in SUBNAV_LINKS:
            assert f">{label}</a>" in nav, (url, label)
