"""OAuth vendors end to end against a fake vendor on loopback (tests/providers/oauth_fake.py): Connect,
the callback's state checks, refresh before a call, the refresh task, a rejected refresh and Reconnect,
two workers refreshing at once, and the SmartApp's subscriptions on INSTALL/UPDATE."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from locks import tokens
from locks.apps import SCHEDULES
from locks.dispatch import dispatch_lock
from locks.models import Activity, CodeStatus, CommandState, IssueKind, IssueStatus, LockCommand, LockIssue
from locks.tasks import refresh_tokens
from providers import oauth
from providers.models import AccountStatus, ProviderAccount
from tests import factories
from tests.conftest import verified_client_for
from tests.providers.oauth_fake import FakeOAuthVendor
from tests.providers.test_smartthings import public_pem, signed_headers

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
DEVICE = "6f5ea629-front"
PIN = "583017"


@pytest.fixture
def fake():
    with FakeOAuthVendor() as vendor:
        yield vendor


@pytest.fixture(autouse=True)
def vendors_at_the_fake(settings, fake):
    settings.OAUTH_ENDPOINT_OVERRIDES = {
        vendor: {"authorize_url": fake.url("/oauth/authorize"), "token_url": fake.url("/oauth/token")}
        for vendor in ("smartthings", "schlage", "nuki")
    }


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def oauth_account(world, fake, vendor: str = "smartthings", **extra) -> ProviderAccount:
    credentials = {"client_id": fake.client_id, "client_secret": fake.client_secret, "base_url": fake.url("/v1"),
                   **extra}
    return factories.ProviderAccountFactory(tenant=world.seaside, vendor=vendor, name=f"{vendor} home",
                                            credentials=credentials)


@pytest.fixture
def account(world, fake):
    return oauth_account(world, fake)


@pytest.fixture
def doors(world, account):
    """Two locks on the account, each with a code whose create command is queued."""
    commands = []
    for name in ("Front", "Back"):
        lock = factories.LockFactory(
            tenant=world.seaside, property=world.dune, provider_account=account, name=name,
            vendor_device_id=f"{DEVICE}-{name}", requirements={"code_lengths": [6], "max_active_codes": 8},
        )
        code = factories.AccessCodeFactory(tenant=world.seaside, lock=lock, booking=world.booking, pin=PIN,
                                           status=CodeStatus.SETTING)
        commands.append(factories.LockCommandFactory(tenant=world.seaside, lock=lock, access_code=code,
                                                     action="create"))
    return commands


def connect_url(account: ProviderAccount) -> str:
    return reverse("providers:account_connect", args=[account.tenant.slug, account.uuid])


def start(client, account: ProviderAccount) -> str:
    """Press Connect and sign in at the (fake) vendor: the callback URL the vendor sends the browser to."""
    response = client.get(connect_url(account))
    assert response.status_code == 302
    consent = requests.get(response["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    parts = urlsplit(consent.headers["Location"])
    assert parts.path == reverse("oauth_callback")
    return f"{parts.path}?{parts.query}"


def connect(client, account: ProviderAccount):
    return client.get(start(client, account))


def stored(account: ProviderAccount) -> oauth.TokenSet | None:
    account.refresh_from_db()
    return oauth.stored_token(account.credentials)


def test_it_connects_through_the_vendor_and_stores_the_tokens_encrypted(client, world, account, fake, clock):
    verified_client_for(client, world.alice)

    response = connect(client, account)

    assert response.status_code == 302
    assert response["Location"].endswith(f"/providers/{account.uuid}/")
    token = stored(account)
    assert token is not None
    assert token.access_token == fake.issued[0].access
    assert token.refresh_token == fake.issued[0].refresh
    assert token.expires_at == T0 + timedelta(seconds=fake.expires_in)
    assert token.installed_app_id == "ia-77"
    assert account.token_expires_at == token.expires_at
    assert account.status == AccountStatus.OK
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM providers_provideraccount WHERE id = %s", [account.pk])
        raw = cursor.fetchone()[0]
    assert fake.issued[0].refresh not in raw and fake.issued[0].access not in raw
    assert Activity.objects.filter(verb="provider_account.connected").count() == 1


def test_it_sends_the_next_command_with_a_refreshed_token_once_the_old_one_expired(
    client, world, account, fake, doors, clock
):
    verified_client_for(client, world.alice)
    connect(client, account)
    first = fake.issued[0]

    clock.shift(timedelta(minutes=10))  # past the 5-minute lifetime
    dispatch_lock(lock_id=doors[0].lock_id, now=timezone.now())

    command = LockCommand.objects.get(pk=doors[0].pk)
    assert command.state == CommandState.SENT
    assert fake.refresh_grants == 1
    bearer, body = fake.commands()[-1]
    assert bearer == fake.issued[-1].access != first.access
    assert body["commands"][0]["command"] == "setCode"
    token = stored(account)
    assert token is not None
    assert token.refresh_token == fake.issued[-1].refresh
    assert token.refresh_token in fake.live_refresh  # the one valid refresh token is the stored one
    assert first.refresh not in fake.live_refresh

    # Still fresh a minute later: the second door's command reuses it, no refresh.
    clock.shift(timedelta(minutes=1))
    dispatch_lock(lock_id=doors[1].lock_id, now=timezone.now())
    assert fake.refresh_grants == 1
    assert fake.commands()[-1][0] == fake.issued[-1].access


def test_the_task_refreshes_tokens_before_they_expire(client, world, account, fake, clock):
    assert ("locks.tasks.refresh_tokens", "I", 10) in SCHEDULES
    verified_client_for(client, world.alice)
    connect(client, account)
    fake.expires_in = 3600

    assert refresh_tokens() == 1  # expires within the task's look-ahead: refreshed now
    assert refresh_tokens() == 0  # an hour of life left: nothing to do
    token = stored(account)
    assert token is not None and token.refresh_token == fake.issued[-1].refresh
    assert account.token_expires_at == T0 + timedelta(hours=1)


def test_a_rejected_refresh_flags_every_lock_and_reconnect_repairs_it(client, world, account, fake, doors, clock):
    verified_client_for(client, world.alice)
    connect(client, account)
    fake.revoke_all()  # the user removed the app at the vendor

    clock.shift(timedelta(minutes=10))
    dispatch_lock(lock_id=doors[0].lock_id, now=timezone.now())

    account.refresh_from_db()
    assert account.status == AccountStatus.AUTH_FAILED
    assert "reconnect the account" in account.status_detail
    assert stored(account) is None  # the dead tokens are gone
    assert LockCommand.objects.get(pk=doors[0].pk).reason == "auth_failed"
    assert fake.commands() == []  # nothing was sent with a dead token
    for command in doors:
        issue = LockIssue.objects.get(lock_id=command.lock_id, access_code=None, kind=IssueKind.AUTH_FAILED)
        assert issue.status == IssueStatus.OPEN
    page = client.get(reverse("providers:account_detail", args=["seaside", account.uuid])).content.decode()
    assert "Reconnect the account" in page

    fake.revoked = False
    response = connect(client, account)

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.OK
    assert stored(account) is not None
    # Every lock's account-wide flag is resolved; the one code whose command failed meanwhile keeps its own
    # issue until staff press Retry now (the playbook's next step), as after "Test connection".
    assert not LockIssue.objects.filter(kind=IssueKind.AUTH_FAILED, status=IssueStatus.OPEN,
                                        access_code=None).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_leave_exactly_one_valid_refresh_token(world, fake):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL)")
    account = oauth_account(world, fake)
    pair = fake._issue()
    expired = oauth.token_from_answer(pair, now=timezone.now() - timedelta(hours=1))
    ProviderAccount.objects.filter(pk=account.pk).update(
        credentials=oauth.with_token(account.credentials, expired), token_expires_at=expired.expires_at
    )
    barrier = threading.Barrier(2)
    got: list[str] = []
    errors: list[Exception] = []

    def worker() -> None:
        try:
            barrier.wait()
            got.append(tokens.account_refresh_token(account_id=account.pk, now=timezone.now()).access_token)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert fake.refresh_grants == 1
    assert got == [fake.issued[-1].access] * 2
    token = stored(account)
    assert token is not None
    assert fake.live_refresh == {token.refresh_token}
    assert account.status != AccountStatus.AUTH_FAILED


def test_schlage_connects_with_pkce(client, world, fake, clock):
    account = oauth_account(world, fake, "schlage", api_key="sub-key")
    verified_client_for(client, world.alice)

    redirect = client.get(connect_url(account))["Location"]
    query = parse_qs(urlsplit(redirect).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    consent = requests.get(redirect, allow_redirects=False, timeout=5)
    parts = urlsplit(consent.headers["Location"])
    client.get(f"{parts.path}?{parts.query}")

    assert stored(account) is not None  # the fake checked the verifier against the challenge


def test_nuki_web_connects_with_oauth(client, world, fake, clock):
    account = oauth_account(world, fake, "nuki")
    verified_client_for(client, world.alice)

    connect(client, account)

    assert stored(account) is not None
    assert "code_challenge" not in fake.issued[0].access


# --- the callback's checks: bad or missing state → 400, nothing saved


def test_it_refuses_a_callback_without_state(client, world, account, fake):
    verified_client_for(client, world.alice)
    start(client, account)

    response = client.get(reverse("oauth_callback"), {"code": "code-1"})

    assert response.status_code == 400
    assert stored(account) is None
    assert fake.grants == []


def test_it_refuses_an_unknown_state_and_a_replayed_one(client, world, account, fake):
    verified_client_for(client, world.alice)
    callback = start(client, account)

    forged = client.get(reverse("oauth_callback"), {"code": "code-1", "state": "made-up"})
    assert forged.status_code == 400
    assert client.get(callback).status_code == 302
    replayed = client.get(callback)

    assert replayed.status_code == 400
    assert fake.grants == ["authorization_code"]


def test_it_saves_nothing_when_the_user_denies_access(client, world, account, fake):
    verified_client_for(client, world.alice)
    callback = start(client, account)
    state = parse_qs(urlsplit(callback).query)["state"][0]

    response = client.get(reverse("oauth_callback"), {"error": "access_denied", "state": state})

    assert response.status_code == 400
    assert stored(account) is None


def test_mallory_gets_404_on_connect_and_cannot_use_alices_callback(client, world, account, fake):
    verified_client_for(client, world.alice)
    callback = start(client, account)

    verified_client_for(client, world.mallory)
    assert client.get(connect_url(account)).status_code == 404
    assert client.get(callback).status_code == 400  # the state belongs to alice's session

    assert stored(account) is None
    assert fake.grants == []


def test_only_admins_connect_and_anonymous_callbacks_go_to_login(client, world, account):
    client.force_login(world.bob)
    assert client.get(connect_url(account)).status_code == 403
    client.logout()
    response = client.get(reverse("oauth_callback"), {"code": "c", "state": "s"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- SmartApp subscriptions


INSTALLED_APP = {
    "installedAppId": "ia-77",
    "locationId": "loc-1",
    "config": {"locks": [{"valueType": "DEVICE", "deviceConfig": {"deviceId": DEVICE, "componentId": "main"}}]},
}


def lifecycle(kind: str) -> bytes:
    data = {"authToken": f"lifecycle-{kind.lower()}-token", "refreshToken": f"SECRET-{kind.lower()}-refresh-9e2",
            "installedApp": INSTALLED_APP}
    return json.dumps({"lifecycle": kind, "executionId": "x-1", "locale": "en", "version": "1.0.0",
                       f"{kind.lower()}Data": data}).encode()


def deliver(client, account, key, body: bytes):
    url = reverse("webhooks:receive", args=["smartthings", account.uuid])
    headers = signed_headers(body, key, path=url)
    del headers["X-Lockstep-Request-Path"], headers["Content-Type"]
    return client.post(url, data=body, content_type="application/json", headers=headers)


@pytest.fixture(scope="module")
def app_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def subscription_posts(fake) -> list[tuple[str, dict]]:
    return [(bearer, body) for method, path, bearer, body in fake.api_calls
            if method == "POST" and path == "/v1/installedapps/ia-77/subscriptions"]


def test_install_creates_the_subscriptions_and_the_account_page_lists_them(client, world, fake, app_key):
    account = oauth_account(world, fake, public_key=public_pem(app_key))

    response = deliver(client, account, app_key, lifecycle("INSTALL"))

    assert response.status_code == 200
    assert response.json() == {"installData": {}}
    posts = subscription_posts(fake)
    assert {bearer for bearer, _ in posts} == {"lifecycle-install-token"}
    devices = [body["device"] for _, body in posts if body["sourceType"] == "DEVICE"]
    assert sorted(d["capability"] for d in devices) == ["battery", "lock", "lockCodes"]
    assert all(d["deviceId"] == DEVICE and d["componentId"] == "main" for d in devices)
    health = [body["deviceHealth"] for _, body in posts if body["sourceType"] == "DEVICE_HEALTH"]
    assert health == [{"deviceIds": [DEVICE], "subscriptionName": "health"}]
    account.refresh_from_db()
    assert len(account.subscriptions) == 4
    token = oauth.stored_token(account.credentials)
    assert token is not None and token.refresh_token == "SECRET-install-refresh-9e2"

    verified_client_for(client, world.alice)
    page = client.get(reverse("providers:account_detail", args=["seaside", account.uuid])).content.decode()
    for shown in ("lockCodes", "battery", "DeviceHealth", DEVICE, "Last event received"):
        assert shown in page
    assert "SECRET-install-refresh-9e2" not in page and "lifecycle-install-token" not in page


def test_update_replaces_the_subscriptions(client, world, fake, app_key):
    account = oauth_account(world, fake, public_key=public_pem(app_key))

    response = deliver(client, account, app_key, lifecycle("UPDATE"))

    assert response.status_code == 200
    assert response.json() == {"updateData": {}}
    calls = [(method, path) for method, path, _, _ in fake.api_calls]
    assert calls[0] == ("DELETE", "/v1/installedapps/ia-77/subscriptions")
    assert len(subscription_posts(fake)) == 4


def test_an_unsigned_install_subscribes_nothing(client, world, fake, app_key):
    from cryptography.hazmat.primitives.asymmetric import rsa

    account = oauth_account(world, fake, public_key=public_pem(app_key))
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = deliver(client, account, forger, lifecycle("INSTALL"))

    assert response.status_code == 401
    assert fake.api_calls == []
    account.refresh_from_db()
    assert account.subscriptions == [] and oauth.stored_token(account.credentials) is None
