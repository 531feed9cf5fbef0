"""Every page under /t/<slug>/ is walked from the URL conf and probed as mallory, anonymous, olive and alice.

The list of URLs is not written by hand: it is read from `get_resolver()` at import time, so a page added
tomorrow is probed tomorrow. A URL kwarg this file does not know fails the test until someone maps it to a
Seaside object below (KWARG_VALUES), which is the point: no page gets past without a tenancy check.

Objects are ones olive does NOT own (Harbor View Loft, its booking, lock, code, command and issue), so the
same URL serves every check: mallory (another tenant's admin) gets 404 for GET and POST, anonymous users
are sent to log in, olive (owner of Dune Cottage only) cannot reach them nor any admin page, alice (Seaside
admin) gets an answer that is not a server error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone

from locks.models import AccessCode, Activity, Lock, LockCommand, LockIssue
from portal.models import (
    ApiKey,
    Booking,
    BookingConflict,
    BookingFeed,
    Invitation,
    Membership,
    Message,
    Role,
)
from providers.models import ProviderAccount, WebhookEvent
from tests import factories

TENANT_PREFIX = "t/<slug:tenant_slug>/"
# Pages only tenant admins may open; olive and bob get 403 there (URL prefixes inside /t/<slug>/).
ADMIN_AREAS = ("settings/", "providers/")


# --- walking the URL conf


def _pattern_text(pattern: Any) -> str:
    if isinstance(pattern, RoutePattern):
        return str(pattern)
    if isinstance(pattern, RegexPattern):
        text = str(pattern).lstrip("^").removesuffix("\\Z").removesuffix("$")
        return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", text)
    return str(pattern)


def _walk(patterns: list, prefix: str = "") -> Iterator[str]:
    for entry in patterns:
        route = prefix + _pattern_text(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def tenant_routes() -> list[str]:
    routes = {route for route in _walk(get_resolver().url_patterns) if route.startswith(TENANT_PREFIX)}
    return sorted(routes)


ROUTES = tenant_routes()
KWARG = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


# --- the objects the URLs point at


@dataclass
class Targets:
    """Seaside objects olive does not own."""

    world: Any
    code: AccessCode
    command: LockCommand
    issue: LockIssue
    member: Membership
    api_key: ApiKey
    event: WebhookEvent
    invitation: Invitation
    feed: BookingFeed
    conflict: BookingConflict
    person_code: AccessCode
    message: Message


@pytest.fixture
def targets(world) -> Targets:
    now = timezone.now()
    code = factories.AccessCodeFactory(
        tenant=world.seaside, lock=world.other_lock, booking=world.other_booking, pin="615273"
    )
    command = factories.LockCommandFactory(tenant=world.seaside, lock=world.other_lock, access_code=code)
    issue = factories.LockIssueFactory(
        tenant=world.seaside, lock=world.other_lock, access_code=code, command=command, kind="nack"
    )
    api_key = ApiKey.objects.create(tenant=world.seaside, name="PMS", prefix="lsk_walk", key_hash="0" * 64)
    event = WebhookEvent.objects.create(
        provider_account=world.account, vendor_event_id="evt_walk", received_at=now, payload={}
    )
    member = Membership.objects.get(user=world.bob, tenant=world.seaside)
    invitation = Invitation.objects.create(
        tenant=world.seaside, email="nina@example.com", role=Role.STAFF, token_hash="1" * 64,
        created_at=now, expires_at=now + timedelta(days=7),
    )
    feed = BookingFeed.objects.create(tenant=world.seaside, property=world.harbor_view, label="Airbnb",
                                      url="http://127.0.0.1:9/walk.ics")
    conflict = BookingConflict.objects.create(
        tenant=world.seaside, property=world.harbor_view, feed=feed, source="ical", external_ref="walk",
        guest_name="Walk", check_in=now, check_out=now + timedelta(days=1), first_seen_at=now, last_seen_at=now,
    )
    return Targets(
        world=world, code=code, command=command, issue=issue, member=member, api_key=api_key, event=event,
        invitation=invitation, feed=feed, conflict=conflict,
        person_code=factories.AccessCodeFactory(tenant=world.seaside, lock=world.other_lock, booking=None,
                                                purpose="cleaner", holder_name="Walk", pin="738291"),
        message=Message.objects.create(tenant=world.seaside, booking=world.other_booking, kind="code_delivery",
                                       channel="email", recipient="walk@example.com", status="sent",
                                       created_at=now),
    )


def footprint() -> tuple[int, ...]:
    """Row counts that any write through a page would change (and open invitations, which a revoke ends)."""
    models = (Activity, LockCommand, Booking, Membership, ProviderAccount, Lock, ApiKey, BookingFeed, Message)
    open_invitations = Invitation.objects.filter(accepted_at=None, revoked_at=None).count()
    return (*(model.objects.count() for model in models), open_invitations)


def _action(t: Targets, route: str) -> str:
    # A real action name per kind of object, so the probe reaches the action code path, not a bad-name 404.
    if "issues/" in route:
        return "dismiss"
    if "codes/" in route:
        return "retry_now"
    return "reconcile"


# URL kwarg name → its value for Seaside. Add new kwarg names here (and an object to `Targets` if needed).
KWARG_VALUES: dict[str, Callable[[Targets, str], Any]] = {
    "tenant_slug": lambda t, r: t.world.seaside.slug,
    "property_id": lambda t, r: t.world.harbor_view.pk,
    "booking_id": lambda t, r: t.world.other_booking.pk,
    "lock_id": lambda t, r: t.world.other_lock.pk,
    "code_id": lambda t, r: t.code.pk,
    "access_code_id": lambda t, r: t.code.pk,
    "person_code_id": lambda t, r: t.person_code.pk,
    "command_id": lambda t, r: t.command.pk,
    "issue_id": lambda t, r: t.issue.pk,
    "account_uuid": lambda t, r: t.world.account.uuid,
    "account_id": lambda t, r: t.world.account.pk,
    "member_id": lambda t, r: t.member.pk,
    "membership_id": lambda t, r: t.member.pk,
    "key_id": lambda t, r: t.api_key.pk,
    "api_key_id": lambda t, r: t.api_key.pk,
    "event_id": lambda t, r: t.event.pk,
    "feed_id": lambda t, r: t.feed.pk,
    "conflict_id": lambda t, r: t.conflict.pk,
    "invitation_id": lambda t, r: t.invitation.pk,
    "message_id": lambda t, r: t.message.pk,
    "action": _action,
}


def build_url(route: str, targets: Targets) -> str:
    def value(match: re.Match) -> str:
        name = match.group("name")
        if name not in KWARG_VALUES:
            pytest.fail(
                f"URL {route!r} takes <{name}>, which tests/portal/test_tenancy.py does not know. Add "
                f"{name!r} to KWARG_VALUES there, mapped to a Seaside object olive does not own, so this "
                "page is probed for tenancy like every other.",
                pytrace=False,
            )
        return str(KWARG_VALUES[name](targets, route))

    return "/" + KWARG.sub(value, route)


def is_admin_area(route: str) -> bool:
    return route.removeprefix(TENANT_PREFIX).startswith(ADMIN_AREAS)


def has_objects(route: str) -> bool:
    names = {m.group("name") for m in KWARG.finditer(route)} - {"tenant_slug", "action"}
    return bool(names)


# --- the walk


def test_it_found_the_tenant_pages():
    # Guards the walker itself: if it finds nothing, every parametrised case below silently vanishes.
    assert TENANT_PREFIX in ROUTES
    for expected in ("settings/", "bookings/<int:booking_id>/", "providers/<uuid:account_uuid>/"):
        assert TENANT_PREFIX + expected in ROUTES


def test_it_fails_with_a_helpful_message_for_an_unknown_kwarg(targets):
    with pytest.raises(pytest.fail.Exception, match="Add 'widget_id' to KWARG_VALUES"):
        build_url(TENANT_PREFIX + "widgets/<int:widget_id>/", targets)


@pytest.mark.parametrize("route", ROUTES)
def test_every_tenant_page_is_scoped_to_its_tenant(client, targets, route):
    world = targets.world
    url = build_url(route, targets)
    assert url.startswith("/t/seaside/")

    # Anonymous: sent to log in, nothing else.
    response = client.get(url)
    assert response.status_code == 302, f"anonymous GET {url}: {response.status_code}"
    assert response["Location"].startswith(reverse("login")), response["Location"]

    # Mallory, admin of another tenant: the same 404 as for a tenant that does not exist, and no writes.
    before = footprint()
    client.force_login(world.mallory)
    assert client.get(url).status_code == 404, f"mallory GET {url}"
    assert client.post(url, {}).status_code == 404, f"mallory POST {url}"
    assert footprint() == before, f"mallory's requests to {url} wrote rows"

    # Olive, owner of Dune Cottage only: no admin pages, none of the other property's objects.
    client.force_login(world.olive)
    get = client.get(url)
    before = footprint()
    post = client.post(url, {})
    assert footprint() == before, f"olive (read-only owner) POST {url} wrote rows"
    if is_admin_area(route):
        assert get.status_code == 403, f"olive GET {url}: {get.status_code}"
        assert post.status_code == 403, f"olive POST {url}: {post.status_code}"
    elif has_objects(route):
        assert get.status_code in (403, 404, 405), f"olive GET {url}: {get.status_code}"
        assert post.status_code in (403, 404, 405), f"olive POST {url}: {post.status_code}"
    else:
        assert get.status_code < 500, f"olive GET {url}: {get.status_code}"

    # Bob, staff: not an admin.
    if is_admin_area(route):
        client.force_login(world.bob)
        assert client.get(url).status_code == 403, f"bob GET {url}"

    # Alice, Seaside admin: a real answer.
    client.force_login(world.alice)
    response = client.get(url)
    assert response.status_code < 500, f"alice GET {url}: {response.status_code}"
    assert response.status_code != 404 or not has_objects(route) or "act/" in route, (
        f"alice GET {url} gave 404: the test's object ids do not reach this page"
    )
