"""Acceptance: credentials never appear in a rendered page, an API response, a log line or Activity.

Every vendor's account gets distinctive secrets. The vendors, mocked at their HTTP edge with `responses`,
fail in the worst way we can think of: they echo the request they got (Authorization header,
subscription key, JSON body with the PIN) back in their error text, as 401, as 500 JSON, as 500 plain
text; or they time out. Then we look everywhere a human or a machine could read: pages, the REST API,
every log record at DEBUG, and the command / issue / Activity rows the engine wrote.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
import requests
import responses
from django.core import serializers
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from locks.dispatch import dispatch_lock
from locks.models import Activity, CodeStatus, LockCommand, LockIssue
from portal.api.keys import api_key_create
from portal.models import Role
from providers.base import ProviderError
from providers.models import ProviderAccount
from tests import factories
from tests.conftest import verified_client_for

# Distinctive credentials per vendor (field names from providers/credentials.py CREDENTIAL_FIELDS).
ACCOUNTS: dict[str, dict] = {
    "seam": {
        "credentials": {"api_key": "SECRET-seam-key-9f3a51c7e2"},
        "webhook_secret": "whsec_SECRETseamHook4b8e2d91",
    },
    "smartthings": {"credentials": {"token": "SECRET-st-token-77c1e0a9b4"}, "webhook_secret": ""},
    "nuki": {
        "credentials": {"api_token": "SECRET-nuki-token-3d9f02ab61"},
        "webhook_secret": "SECRET-nuki-hook-6e1c88d0f5",
    },
    "schlage": {
        "credentials": {
            "api_key": "SECRET-schlage-key-a41f0c2d7e",
            "token": "SECRET-schlage-bearer-5b7d19ce08",
            "client_secret": "SECRET-schlage-client-0e93f2aa3c",
        },
        "webhook_secret": "",
    },
    "simulator": {"credentials": {"seed": 7}, "webhook_secret": "lsw_SECRET-sim-hook-81d4c2be47"},
}
NEW_SECRET = "SECRET-typed-but-rejected-c3e8a17f"
SECRETS: tuple[str, ...] = (
    *(
        value
        for spec in ACCOUNTS.values()
        for value in [*spec["credentials"].values(), spec["webhook_secret"]]
        if isinstance(value, str) and value.startswith(("SECRET", "whsec_", "lsw_"))
    ),
    NEW_SECRET,
)
HTTP_VENDORS = ["seam", "smartthings", "nuki", "schlage"]
ANY_URL = re.compile(r"https?://.*")
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PIN = "583017"


def leaks(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """The secrets found in `text`, whole or by their last 6 characters."""
    return [secret for secret in secrets if secret in text or secret[-6:] in text]


def echo_of(request: requests.PreparedRequest) -> str:
    """What a careless vendor says back: everything it was sent, credentials and PIN included."""
    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
    return f"rejected {request.method} {request.url} headers={dict(request.headers)!r} body={body}"


def mock_vendors(failure: str) -> None:
    """Every vendor call, whatever the host, method or path, fails as `failure` says."""

    def callback(request: requests.PreparedRequest):
        said = echo_of(request)
        if failure == "connection-error":  # e.g. a proxy that quotes the request in its refusal
            raise requests.exceptions.ConnectionError(f"proxy refused: {said}")
        if failure == "200-odd":  # a success whose body the adapter does not expect
            return 200, {"Content-Type": "application/json"}, json.dumps({"echo": said, "results": [said]})
        if failure == "401":
            status, as_json = 401, True
        elif failure == "500-json":
            status, as_json = 500, True
        else:
            status, as_json = 500, False
        if not as_json:
            return status, {"Content-Type": "text/plain"}, said
        # One body that every adapter's error extractor reads its message from.
        body = {
            "error": {"type": "unauthorized", "code": "Unauthorized", "message": said, "errorMessage": said},
            "detailMessage": said,
            "message": said,
        }
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    for method in METHODS:
        if failure == "timeout":
            responses.add(
                method, ANY_URL, body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)")
            )
        else:
            responses.add_callback(method, ANY_URL, callback=callback)


FAILURES = ["401", "500-json", "500-text", "timeout"]


@pytest.fixture
def accounts(world) -> dict[str, ProviderAccount]:
    return {
        vendor: factories.ProviderAccountFactory(
            tenant=world.seaside,
            vendor=vendor,
            name=f"{vendor} account",
            credentials=dict(spec["credentials"]),
            webhook_secret=spec["webhook_secret"],
        )
        for vendor, spec in ACCOUNTS.items()
    }


@pytest.fixture
def pending(world, accounts) -> dict[str, LockCommand]:
    """Per vendor: a lock on Dune with a code being set and its create command queued."""
    commands = {}
    for vendor, account in accounts.items():
        lock = factories.LockFactory(
            tenant=world.seaside,
            property=world.dune,
            provider_account=account,
            name=f"{vendor} door",
            vendor_device_id=f"{vendor}-device-1",
        )
        code = factories.AccessCodeFactory(
            tenant=world.seaside, lock=lock, booking=world.booking, pin=PIN, status=CodeStatus.SETTING
        )
        commands[vendor] = factories.LockCommandFactory(
            tenant=world.seaside, lock=lock, access_code=code, action="create"
        )
    return commands


def dispatch_all(pending: dict[str, LockCommand]) -> None:
    now = timezone.now()
    for command in pending.values():
        dispatch_lock(lock_id=command.lock_id, now=now)


def engine_rows_text() -> str:
    """Everything the engine wrote that a person or an integration can read, as one string."""
    return "\n".join(
        serializers.serialize("json", queryset)
        for queryset in (LockCommand.objects.all(), LockIssue.objects.all(), Activity.objects.all())
    )


def body_of(response) -> str:
    return response.content.decode()


# --------------------------------------------------------------------------- (1) pages


def provider_url(name: str, *args) -> str:
    return reverse(f"providers:{name}", args=["seaside", *args])


@pytest.fixture
def as_alice(client, world):
    return verified_client_for(client, world.alice)  # an admin with a second factor (portal/two_factor.py)


def test_it_renders_no_secret_on_any_account_or_settings_page(as_alice, accounts):
    urls = [
        provider_url("account_list"),
        provider_url("account_create"),
        *[f"{provider_url('account_create')}?vendor={vendor}" for vendor in ACCOUNTS],
        reverse("settings", kwargs={"tenant_slug": "seaside"}),
        reverse("settings_members", kwargs={"tenant_slug": "seaside"}),
        reverse("settings_defaults", kwargs={"tenant_slug": "seaside"}),
        reverse("api_key_list", kwargs={"tenant_slug": "seaside"}),
    ]
    for account in accounts.values():
        urls += [
            provider_url("account_detail", account.uuid),
            provider_url("account_edit", account.uuid),
            provider_url("account_import", account.uuid),
        ]
    for url in urls:
        response = as_alice.get(url)
        assert response.status_code == 200, url
        assert leaks(body_of(response)) == [], url


def stored_secrets(account: ProviderAccount) -> set[str]:
    values = [*(account.credentials or {}).values(), account.webhook_secret]
    return {value for value in values if value in SECRETS}


@pytest.mark.parametrize("vendor", list(ACCOUNTS))
def test_it_keeps_secrets_off_the_edit_pages_when_saving_blank_or_rejected(as_alice, accounts, vendor):
    account = accounts[vendor]
    edit = provider_url("account_edit", account.uuid)
    stored_secrets_before = stored_secrets(account)
    assert stored_secrets_before

    # Blank secret fields keep what is stored; the page after saving shows none of it.
    response = as_alice.post(edit, {"name": "Renamed"}, follow=True)
    assert response.redirect_chain, body_of(response)
    assert leaks(body_of(response)) == []
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert stored_secrets(account) == stored_secrets_before

    # A new secret typed into a form that is then rejected is not rendered back either.
    secret_fields = {name: NEW_SECRET for name in ACCOUNTS[vendor]["credentials"] if name != "seed"}
    secret_fields["webhook_secret"] = NEW_SECRET
    response = as_alice.post(edit, {"name": "", **secret_fields})
    assert response.status_code == 400
    assert leaks(body_of(response)) == []
    account.refresh_from_db()
    assert stored_secrets(account) == stored_secrets_before


@pytest.mark.parametrize("vendor", HTTP_VENDORS)
def test_it_keeps_secrets_off_the_add_account_pages(as_alice, world, vendor):
    fresh = {
        name: value.replace("SECRET", "SECRET-fresh")
        for name, value in ACCOUNTS[vendor]["credentials"].items()
    }
    create = f"{provider_url('account_create')}?vendor={vendor}"

    # Rejected (no name): the form comes back without the secrets just typed.
    response = as_alice.post(create, {"vendor": vendor, "name": "", **fresh})
    assert response.status_code == 400
    assert leaks(body_of(response), tuple(fresh.values())) == []

    response = as_alice.post(create, {"vendor": vendor, "name": "Fresh", **fresh}, follow=True)
    assert response.redirect_chain, body_of(response)
    assert leaks(body_of(response), tuple(fresh.values())) == []
    account = ProviderAccount.objects.get(tenant=world.seaside, name="Fresh")
    assert account.credentials == fresh
    assert leaks(engine_rows_text(), tuple(fresh.values())) == []


def test_it_keeps_secrets_off_the_django_admin(client, accounts):
    admin = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    urls = [reverse("admin:providers_provideraccount_changelist")]
    urls += [reverse("admin:providers_provideraccount_change", args=[a.pk]) for a in accounts.values()]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert leaks(body_of(response)) == [], url


@pytest.mark.parametrize("failure", ["401", "500-json", "500-text"])
@pytest.mark.parametrize("vendor", HTTP_VENDORS)
@responses.activate
def test_it_shows_no_secret_when_the_vendor_echoes_it_on_test_and_import(
    as_alice, world, accounts, vendor, failure
):
    mock_vendors(failure)
    account = accounts[vendor]

    response = as_alice.post(provider_url("account_test", account.uuid), follow=True)
    assert response.status_code == 200
    assert responses.calls, "the vendor was asked"
    assert any(leaks(call.response.text) for call in responses.calls if call.response is not None)
    assert leaks(body_of(response)) == []
    account.refresh_from_db()
    assert account.status != "ok"
    assert leaks(account.status_detail) == []

    response = as_alice.post(provider_url("account_import", account.uuid), {"property": world.dune.pk})
    assert response.status_code == 400
    assert "did not list the devices" in body_of(response)
    assert leaks(body_of(response)) == []

    for url in (provider_url("account_detail", account.uuid), provider_url("account_list")):
        assert leaks(body_of(as_alice.get(url))) == []
    assert leaks(engine_rows_text()) == []


@responses.activate
def test_it_shows_no_secret_on_lock_and_issue_pages_after_echoed_failures(as_alice, pending):
    mock_vendors("401")
    dispatch_all(pending)
    assert LockIssue.objects.filter(lock__provider_account__vendor__in=HTTP_VENDORS).exists()
    urls = [
        reverse("dashboard", kwargs={"tenant_slug": "seaside"}),
        reverse("locks:lock_list", kwargs={"tenant_slug": "seaside"}),
        reverse("locks:issue_list", kwargs={"tenant_slug": "seaside"}),
        *[
            reverse("locks:lock_detail", kwargs={"tenant_slug": "seaside", "lock_id": c.lock_id})
            for c in pending.values()
        ],
    ]
    for url in urls:
        response = as_alice.get(url)
        assert response.status_code == 200, url
        assert leaks(body_of(response)) == [], url


# --------------------------------------------------------------------------- (2) API


@pytest.mark.parametrize("failure", ["401", "500-json"])
@responses.activate
def test_it_returns_no_secret_from_the_api_after_echoed_failures(world, pending, failure):
    mock_vendors(failure)
    dispatch_all(pending)
    failed = LockCommand.objects.filter(lock__provider_account__vendor__in=HTTP_VENDORS, state="failed")
    assert failed.count() == len(HTTP_VENDORS)
    assert all(command.vendor_detail for command in failed)

    _, key = api_key_create(
        tenant=world.seaside, name="PMS", role=Role.STAFF, created_by=world.alice, now=timezone.now()
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    paths = ["properties/", "locks/", "bookings/", "access-codes/", "commands/", "issues/"]
    for command in pending.values():
        paths += [
            f"locks/{command.lock_id}/",
            f"access-codes/{command.access_code_id}/",
            f"commands/{command.pk}/",
        ]
    paths += [f"issues/{issue.pk}/" for issue in LockIssue.objects.all()]
    for path in paths:
        response = api.get(f"/api/v1/{path}")
        assert response.status_code == 200, path
        assert leaks(body_of(response)) == [], path
    # The failures are there to read, just without the credentials.
    commands_text = body_of(api.get("/api/v1/commands/"))
    assert "[redacted]" in commands_text


# --------------------------------------------------------------------------- (3) logs and engine rows


@pytest.mark.parametrize("failure", FAILURES)
@responses.activate
def test_it_logs_and_records_no_secret_when_dispatch_fails(caplog, world, pending, failure):
    caplog.set_level(logging.DEBUG)
    mock_vendors(failure)

    dispatch_all(pending)

    for vendor in HTTP_VENDORS:
        command = LockCommand.objects.get(pk=pending[vendor].pk)
        assert command.state in ("failed", "timed_out"), (vendor, command.state)
        assert command.reason, vendor
    if failure != "timeout":
        assert caplog.records, "the HTTP edge logs every answered call at DEBUG"
        # The vendor's words were kept (the echo reached the engine), only the secrets went.
        details = [LockCommand.objects.get(pk=pending[v].pk).vendor_detail for v in HTTP_VENDORS]
        assert all("[redacted]" in detail for detail in details), details
    everything = "\n".join([caplog.text, *(str(r.args) for r in caplog.records), engine_rows_text()])
    assert leaks(everything, (*SECRETS, PIN)) == []
    accounts_text = "\n".join(a.status_detail for a in ProviderAccount.objects.all())
    assert leaks(accounts_text) == []


@pytest.mark.parametrize("failure", ["401", "500-json"])
@responses.activate
def test_it_logs_no_secret_across_retries_and_the_sweep(caplog, world, pending, failure):
    """A failed create is retried later; the second attempt's failure is as quiet as the first."""
    from locks.sweep import sweep
    from locks.tick import tick

    caplog.set_level(logging.DEBUG)
    mock_vendors(failure)
    now = timezone.now()
    dispatch_all(pending)
    later = now + timedelta(hours=2)
    tick(now=later)
    sweep(now=later)
    for command in pending.values():
        dispatch_lock(lock_id=command.lock_id, now=later)

    everything = "\n".join([caplog.text, engine_rows_text()])
    assert leaks(everything, (*SECRETS, PIN)) == []


# --------------------------------------------------------------------------- (4) the stored row


def test_it_stores_credentials_only_encrypted(accounts):
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials, webhook_secret FROM providers_provideraccount")
        raw = "\n".join(str(value) for row in cursor.fetchall() for value in row)
    assert raw
    assert leaks(raw) == []


@pytest.mark.parametrize("failure", ["connection-error", "200-odd"])
@responses.activate
def test_it_logs_and_records_no_secret_when_the_vendor_answers_strangely(caplog, world, pending, failure):
    caplog.set_level(logging.DEBUG)
    mock_vendors(failure)

    dispatch_all(pending)

    assert (
        LockCommand.objects.filter(pk__in=[c.pk for c in pending.values()]).exclude(state="queued").exists()
    )
    everything = "\n".join([caplog.text, *(str(r.args) for r in caplog.records), engine_rows_text()])
    assert leaks(everything, (*SECRETS, PIN)) == []


# --------------------------------------------------------------------------- (5) OAuth connect and refresh


def test_it_shows_logs_and_records_no_token_through_connect_refresh_and_a_rejected_refresh(
    caplog, client, world, settings
):
    """Connect, a refresh before a call, then a refresh the vendor rejects while echoing the refresh
    token in its error text: no access token, refresh token or client secret anywhere a person or an
    integration can read."""
    from urllib.parse import urlsplit

    import time_machine

    from locks import tokens
    from tests.providers.oauth_fake import FakeOAuthVendor

    caplog.set_level(logging.DEBUG)
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = True
    with FakeOAuthVendor(echo_on_error=True) as fake, time_machine.travel(timezone.now(), tick=False) as clock:
        settings.OAUTH_ENDPOINT_OVERRIDES = {
            "smartthings": {"authorize_url": fake.url("/oauth/authorize"), "token_url": fake.url("/oauth/token")}
        }
        account = factories.ProviderAccountFactory(
            tenant=world.seaside, vendor="smartthings", name="ST",
            credentials={"client_id": fake.client_id, "client_secret": fake.client_secret,
                         "base_url": fake.url("/v1")},
        )
        lock = factories.LockFactory(tenant=world.seaside, property=world.dune, provider_account=account,
                                     vendor_device_id="st-dev", requirements={"code_lengths": [6]})
        codes = [factories.AccessCodeFactory(tenant=world.seaside, lock=lock, booking=world.booking, pin=pin,
                                             status=CodeStatus.SETTING) for pin in (PIN, "694128")]
        verified_client_for(client, world.alice)
        consent = requests.get(client.get(reverse("providers:account_connect", args=["seaside", account.uuid]))["Location"],
                               allow_redirects=False, timeout=5)
        parts = urlsplit(consent.headers["Location"])
        pages = [client.get(f"{parts.path}?{parts.query}", follow=True)]

        clock.shift(timedelta(minutes=10))  # expired: refreshed before the call
        factories.LockCommandFactory(tenant=world.seaside, lock=lock, access_code=codes[0], action="create")
        dispatch_lock(lock_id=lock.pk, now=timezone.now())
        assert fake.refresh_grants == 1

        fake.revoke_all()
        clock.shift(timedelta(minutes=10))  # expired again, and the vendor refuses (echoing the token)
        LockCommand.objects.filter(lock=lock).update(state="succeeded")
        factories.LockCommandFactory(tenant=world.seaside, lock=lock, access_code=codes[1], action="create")
        dispatch_lock(lock_id=lock.pk, now=timezone.now())
        with pytest.raises(ProviderError):
            tokens.account_refresh_token(account_id=account.pk, now=timezone.now())

        account.refresh_from_db()
        assert account.status == "auth_failed"
        secrets = tuple({*(t for pair in fake.issued for t in (pair.access, pair.refresh)), fake.client_secret})
        for name in ("account_detail", "account_edit", "account_list"):
            args = ["seaside"] if name == "account_list" else ["seaside", account.uuid]
            pages.append(client.get(reverse(f"providers:{name}", args=args)))
        pages.append(client.get(reverse("locks:lock_detail", kwargs={"tenant_slug": "seaside", "lock_id": lock.pk})))
        for page in pages:
            assert page.status_code == 200
            assert leaks(body_of(page), secrets) == []

        _, key = api_key_create(tenant=world.seaside, name="PMS", role=Role.STAFF, created_by=world.alice,
                                now=timezone.now())
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        for path in ("locks/", f"locks/{lock.pk}/", "commands/", "issues/", "access-codes/"):
            assert leaks(body_of(api.get(f"/api/v1/{path}")), secrets) == [], path

        everything = "\n".join([caplog.text, *(str(r.args) for r in caplog.records), engine_rows_text(),
                                account.status_detail])
        assert leaks(everything, secrets) == []
        with connection.cursor() as cursor:
            cursor.execute("SELECT credentials FROM providers_provideraccount WHERE id = %s", [account.pk])
            assert leaks(cursor.fetchone()[0], secrets) == []
def test_it_shows_the_totp_secret_only_on_the_setup_page_and_never_logs_or_records_it(
    caplog, client, world, accounts
):
    """The authenticator's secret is shown once, to set it up; never on another page, in the Django
    admin, the API, a log line or Activity."""
    import base64

    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    caplog.set_level(logging.DEBUG)
    client.force_login(world.alice)
    setup = client.get("/account/two-factor/setup/").content.decode()
    device = TOTPDevice.objects.get(user=world.alice)
    secrets_ = (base64.b32encode(device.bin_key).decode(), device.key)
    assert secrets_[0] in setup  # the one page that shows it
    client.post("/account/two-factor/setup/", {"code": f"{totp(device.bin_key):06d}"})

    urls = ["/account/two-factor/", "/account/two-factor/setup/", "/account/two-factor/verify/",
            reverse("dashboard", args=["seaside"]), provider_url("account_list"),
            reverse("settings_members", kwargs={"tenant_slug": "seaside"}),
            reverse("api_key_list", kwargs={"tenant_slug": "seaside"})]
    pages = [client.get(url, follow=True).content.decode() for url in urls]
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    pages += [client.get(reverse("admin:index")).content.decode()]
    _, key = api_key_create(tenant=world.seaside, name="PMS", role=Role.ADMIN, created_by=world.alice,
                            now=timezone.now())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    pages += [api.get(f"/api/v1/{path}").content.decode() for path in ("properties/", "locks/", "commands/")]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    recorded = json.dumps(list(Activity.objects.values("message", "data")), default=str)
    for secret in secrets_:
        assert all(secret not in page for page in pages)
        assert secret not in logged and secret not in recorded
