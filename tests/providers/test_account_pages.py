"""Provider account pages: write-only credentials, test connection, import devices, webhook secret.

The vendor is Seam, mocked at its HTTP edge with `responses` (payloads shaped as in VENDORS.md §1).
"""

from __future__ import annotations

import json

import pytest
import responses
from django.conf import settings
from django.urls import reverse

from locks.models import Activity, Lock
from providers.models import AccountStatus, ProviderAccount
from providers.simulator import simulator_device_create
from tests import factories
from tests.conftest import verified_client_for

SEAM = "https://connect.getseam.com"
API_KEY = "seam_testkey_9Jd83kQz"
NEW_API_KEY = "seam_rotated_77Hq2mXv"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_WHSEC = "whsec_bmV3LXNlY3JldC1mb3ItdGVzdHM="
SECRETS = (API_KEY, NEW_API_KEY, WHSEC, NEW_WHSEC)


def url(name: str, *args) -> str:
    return reverse(f"providers:{name}", args=["seaside", *args])


@pytest.fixture
def seam(world) -> ProviderAccount:
    return factories.ProviderAccountFactory(
        tenant=world.seaside,
        vendor="seam",
        name="Seam workspace",
        credentials={"api_key": API_KEY},
        webhook_secret=WHSEC,
    )


@pytest.fixture
def as_alice(client, world):
    return verified_client_for(client, world.alice)  # an admin with a second factor (portal/two_factor.py)


def assert_no_secret(response) -> None:
    body = response.content.decode()
    for secret in SECRETS:
        assert secret not in body, f"a secret leaked into {response.request['PATH_INFO']}"
        assert secret[-4:] not in body


def seam_device(device_id: str, name: str, **properties) -> dict:
    return {
        "device_id": device_id,
        "device_type": "schlage_lock",
        "capabilities_supported": ["access_code", "lock"],
        "properties": {
            "name": name,
            "online": True,
            "battery_level": 0.8,
            "manufacturer": "schlage",
            "model": {"display_name": "Encode"},
            "supported_code_lengths": [4, 5, 6, 7, 8],
            "max_active_codes_supported": 100,
            "code_constraints": [{"constraint_type": "unique_first_four_digits"}],
            **properties,
        },
    }


# --- access


@pytest.mark.parametrize("name", ["account_list", "account_create"])
def test_it_shows_account_pages_to_admins_only(client, world, name):
    verified_client_for(client, world.alice)
    assert client.get(url(name)).status_code == 200
    for user in (world.bob, world.olive):
        client.force_login(user)
        assert client.get(url(name)).status_code == 403
    verified_client_for(client, world.mallory)
    assert client.get(url(name)).status_code == 404


def test_it_gives_404_for_another_tenants_account(as_alice, world):
    harbor_account = world.harbor_lock.provider_account
    for name in ("account_detail", "account_edit", "account_import"):
        assert as_alice.get(url(name, harbor_account.uuid)).status_code == 404
    for name in ("account_test", "account_webhook_secret"):
        assert as_alice.post(url(name, harbor_account.uuid)).status_code == 404
    harbor_account.refresh_from_db()
    assert harbor_account.status == AccountStatus.UNKNOWN and not harbor_account.webhook_secret


def test_it_forbids_staff_to_change_an_account(client, world, seam):
    client.force_login(world.bob)
    response = client.post(url("account_edit", seam.uuid), {"name": "Hijacked", "api_key": "seam_evil_key"})
    assert response.status_code == 403
    assert client.post(url("account_webhook_secret", seam.uuid)).status_code == 403
    seam.refresh_from_db()
    assert (seam.name, seam.credentials, seam.webhook_secret) == (
        "Seam workspace",
        {"api_key": API_KEY},
        WHSEC,
    )


# --- credentials are write-only


def test_it_never_renders_stored_credentials(as_alice, seam):
    for path in (url("account_list"), url("account_detail", seam.uuid), url("account_edit", seam.uuid)):
        response = as_alice.get(path)
        assert response.status_code == 200
        assert_no_secret(response)
    detail = as_alice.get(url("account_detail", seam.uuid)).content.decode()
    assert "•••• set (last 4 hidden)" in detail
    assert f"{settings.PUBLIC_BASE_URL}/webhooks/seam/{seam.uuid}/" in detail


def test_it_adds_a_seam_account_with_encrypted_credentials(as_alice, world):
    response = as_alice.post(
        url("account_create"),
        {
            "vendor": "seam",
            "name": "Main workspace",
            "api_key": API_KEY,
            "webhook_secret": WHSEC,
            "base_url": "",
        },
    )
    account = ProviderAccount.objects.get(tenant=world.seaside, name="Main workspace")
    assert response.status_code == 302
    assert response["Location"] == url("account_detail", account.uuid)
    assert account.credentials == {"api_key": API_KEY}
    assert account.webhook_secret == WHSEC
    assert_no_secret(as_alice.get(response["Location"]))
    activity = Activity.objects.get(verb="provider_account.created")
    assert activity.actor == world.alice
    stored = json.dumps(activity.data) + activity.message
    assert all(secret not in stored for secret in SECRETS)
    assert activity.data["fields_set"] == ["api_key"]


def test_it_shows_the_vendors_credential_fields(as_alice):
    smartthings = as_alice.get(url("account_create"), {"vendor": "smartthings"}).content.decode()
    assert 'name="token"' in smartthings and 'name="public_key"' in smartthings
    schlage = as_alice.get(url("account_create"), {"vendor": "schlage"}).content.decode()
    assert 'name="client_secret"' in schlage and 'name="webhook_public_key"' in schlage
    nuki = as_alice.get(url("account_create"), {"vendor": "nuki"}).content.decode()
    assert 'name="api_token"' in nuki
    chooser = as_alice.get(url("account_create")).content.decode()
    assert 'name="vendor"' in chooser


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "No key", "api_key": ""}, "api_key", "This field is required."),
        ({"name": "", "api_key": API_KEY}, "name", "This field is required."),
        (
            {"name": "Bad secret", "api_key": API_KEY, "webhook_secret": "not-whsec"},
            "webhook_secret",
            "whsec_",
        ),
        ({"name": "Bad URL", "api_key": API_KEY, "base_url": "not a url"}, "base_url", "Enter a valid URL."),
        (
            {"name": "SSRF", "api_key": API_KEY, "base_url": "http://169.254.169.254/latest"},
            "base_url",
            "https",
        ),
        (
            {"name": "SSRF", "api_key": API_KEY, "base_url": "https://169.254.169.254/"},
            "base_url",
            "public address",
        ),
        (
            {"name": "SSRF", "api_key": API_KEY, "base_url": "https://10.0.0.7:8443"},
            "base_url",
            "public address",
        ),
        ({"name": "SSRF", "api_key": API_KEY, "base_url": "https://[::1]/"}, "base_url", "public address"),
        (
            {"name": "SSRF", "api_key": API_KEY, "base_url": "https://localhost/"},
            "base_url",
            "public address",
        ),
    ],
)
def test_it_rejects_a_bad_account_next_to_the_field_and_saves_nothing(
    as_alice, world, settings, data, field, message
):
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = False
    before = ProviderAccount.objects.count()
    response = as_alice.post(url("account_create"), {"vendor": "seam", **data})
    assert response.status_code == 400
    assert any(message in e for e in response.context["form"].errors[field]), response.context["form"].errors
    assert f'id="err_{field}"' in response.content.decode()
    assert_no_secret(response)  # not even the value just typed is echoed back
    assert ProviderAccount.objects.count() == before
    assert not Activity.objects.filter(verb="provider_account.created").exists()


def test_it_accepts_a_base_url_on_the_vendors_own_host(as_alice, world):
    data = {
        "vendor": "seam",
        "name": "Pinned",
        "api_key": API_KEY,
        "base_url": "https://connect.getseam.com/",
    }
    assert as_alice.post(url("account_create"), data).status_code == 302
    account = ProviderAccount.objects.get(name="Pinned")
    assert account.credentials == {"api_key": API_KEY, "base_url": "https://connect.getseam.com/"}


@pytest.mark.parametrize(
    "base_url",
    [
        "https://staging.getseam.example",  # any DNS name was accepted without being resolved
        "https://connect.getseam.com.attacker.example/",
        "https://api.nuki.io/",  # another vendor's host
    ],
)
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_it_refuses_a_base_url_outside_the_vendors_hosts_even_under_debug(as_alice, settings, base_url, debug):
    settings.DEBUG = debug
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = False
    data = {"vendor": "seam", "name": "Elsewhere", "api_key": API_KEY, "base_url": base_url}
    response = as_alice.post(url("account_create"), data)
    assert response.status_code == 400
    assert any("connect.getseam.com" in e for e in response.context["form"].errors["base_url"])
    assert not ProviderAccount.objects.filter(name="Elsewhere").exists()


def test_it_keeps_stored_credentials_when_the_fields_are_left_blank(as_alice, world, seam):
    response = as_alice.post(
        url("account_edit", seam.uuid), {"name": "Renamed workspace", "api_key": "", "webhook_secret": ""}
    )
    assert response.status_code == 302
    seam.refresh_from_db()
    assert seam.name == "Renamed workspace"
    assert seam.credentials == {"api_key": API_KEY}
    assert seam.webhook_secret == WHSEC


def test_it_replaces_credentials_that_are_filled_in(as_alice, world, seam):
    ProviderAccount.objects.filter(pk=seam.pk).update(status=AccountStatus.OK)
    response = as_alice.post(
        url("account_edit", seam.uuid),
        {"name": seam.name, "api_key": NEW_API_KEY, "webhook_secret": NEW_WHSEC},
    )
    assert response.status_code == 302
    seam.refresh_from_db()
    assert seam.credentials == {"api_key": NEW_API_KEY}
    assert seam.webhook_secret == NEW_WHSEC
    assert seam.status == AccountStatus.UNKNOWN  # new credentials are untested
    activity = Activity.objects.get(verb="provider_account.updated")
    assert activity.data["fields_changed"] == ["api_key"] and activity.data["webhook_secret_changed"]
    assert all(secret not in json.dumps(activity.data) + activity.message for secret in SECRETS)


def test_it_does_not_echo_a_new_credential_when_the_edit_fails(as_alice, seam):
    response = as_alice.post(url("account_edit", seam.uuid), {"name": "", "api_key": NEW_API_KEY})
    assert response.status_code == 400
    assert_no_secret(response)
    seam.refresh_from_db()
    assert seam.credentials == {"api_key": API_KEY}


# --- test connection


@responses.activate
def test_it_records_a_working_connection(as_alice, world, seam):
    call = responses.post(f"{SEAM}/devices/list", json={"devices": [], "ok": True})
    response = as_alice.post(url("account_test", seam.uuid))
    assert response.status_code == 302
    seam.refresh_from_db()
    assert seam.status == AccountStatus.OK and seam.last_checked_at is not None
    assert call.call_count == 1
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {API_KEY}"
    page = as_alice.get(response["Location"])
    assert "accepted the credentials" in page.content.decode()
    assert_no_secret(page)
    assert Activity.objects.filter(verb="provider_account.checked", data__status="ok").exists()


@responses.activate
def test_it_flags_rejected_credentials(as_alice, world, seam):
    responses.post(
        f"{SEAM}/devices/list",
        status=401,
        json={"error": {"type": "unauthorized", "message": "Unauthorized"}},
    )
    as_alice.post(url("account_test", seam.uuid))
    seam.refresh_from_db()
    assert seam.status == AccountStatus.AUTH_FAILED
    assert seam.last_checked_at is not None
    page = as_alice.get(url("account_detail", seam.uuid))
    assert "Credentials rejected" in page.content.decode()
    assert_no_secret(page)


@responses.activate
def test_it_records_an_unreachable_vendor(as_alice, seam):
    responses.post(f"{SEAM}/devices/list", status=503, body="upstream down")
    as_alice.post(url("account_test", seam.uuid))
    seam.refresh_from_db()
    assert seam.status == AccountStatus.ERROR


def test_it_refuses_to_test_a_connection_on_get(as_alice, seam):
    assert as_alice.get(url("account_test", seam.uuid)).status_code == 405
    seam.refresh_from_db()
    assert seam.last_checked_at is None


# --- import devices


@responses.activate
def test_it_imports_devices_as_locks_in_the_chosen_property(as_alice, world, seam):
    responses.post(
        f"{SEAM}/devices/list",
        json={"devices": [seam_device("dev-1", "Front door"), seam_device("dev-2", "Garage", online=False)]},
    )
    response = as_alice.post(url("account_import", seam.uuid), {"property": world.harbor_view.pk})
    assert response.status_code == 302
    locks = {lock.vendor_device_id: lock for lock in Lock.objects.filter(provider_account=seam)}
    assert set(locks) == {"dev-1", "dev-2"}
    front = locks["dev-1"]
    assert (front.name, front.property, front.tenant) == ("Front door", world.harbor_view, world.seaside)
    assert front.requirements["code_lengths"] == [4, 5, 6, 7, 8]
    assert front.pin_readable is True
    assert locks["dev-2"].online is False
    assert Activity.objects.filter(verb="provider_account.devices_imported", actor=world.alice).exists()


@responses.activate
def test_it_refreshes_known_locks_instead_of_duplicating_them(as_alice, world, seam):
    responses.post(f"{SEAM}/devices/list", json={"devices": [seam_device("dev-1", "Front door")]})
    as_alice.post(url("account_import", seam.uuid), {"property": world.harbor_view.pk})
    responses.replace(
        responses.POST,
        f"{SEAM}/devices/list",
        json={"devices": [seam_device("dev-1", "Front door", online=False)]},
    )
    as_alice.post(url("account_import", seam.uuid), {"property": world.dune.pk})
    lock = Lock.objects.get(provider_account=seam)
    assert lock.property == world.harbor_view  # a known lock keeps its property
    assert lock.online is False


@responses.activate
def test_it_reports_a_failed_import_and_creates_nothing(as_alice, world, seam):
    responses.post(
        f"{SEAM}/devices/list", status=401, json={"error": {"type": "unauthorized", "message": "no"}}
    )
    response = as_alice.post(url("account_import", seam.uuid), {"property": world.dune.pk})
    assert response.status_code == 400
    assert "did not list the devices" in response.content.decode()
    assert not Lock.objects.filter(provider_account=seam).exists()


def test_it_refuses_another_tenants_property_for_an_import(as_alice, world, seam):
    response = as_alice.post(url("account_import", seam.uuid), {"property": world.harbor_property.pk})
    assert response.status_code == 400
    assert "property" in response.context["form"].errors


# --- webhook secret


def test_it_generates_a_webhook_secret_and_shows_it_once(as_alice, world):
    account = world.account  # the simulator signs with a secret we generate
    response = as_alice.post(url("account_webhook_secret", account.uuid))
    assert response.status_code == 200
    account.refresh_from_db()
    secret = account.webhook_secret
    assert secret and secret in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    for path in (url("account_detail", account.uuid), url("account_edit", account.uuid), url("account_list")):
        assert secret not in as_alice.get(path).content.decode()
    activity = Activity.objects.get(verb="provider_account.webhook_secret_generated")
    assert secret not in json.dumps(activity.data) + activity.message


def test_it_does_not_generate_a_secret_for_a_vendor_that_supplies_one(as_alice, seam):
    response = as_alice.post(url("account_webhook_secret", seam.uuid))
    assert response.status_code == 302
    seam.refresh_from_db()
    assert seam.webhook_secret == WHSEC
    assert "not signed with a secret made here" in as_alice.get(response["Location"]).content.decode()
    assert not Activity.objects.filter(verb="provider_account.webhook_secret_generated").exists()


def test_it_explains_public_key_signing_for_smartthings(as_alice, world):
    account = factories.ProviderAccountFactory(
        tenant=world.seaside, vendor="smartthings", credentials={"token": "t"}
    )
    body = as_alice.get(url("account_detail", account.uuid)).content.decode()
    assert "public key" in body
    assert url("account_webhook_secret", account.uuid) not in body


def test_it_shows_the_simulator_seed_which_is_not_a_secret(as_alice, world):
    page = as_alice.get(url("account_edit", world.account.uuid)).content.decode()
    assert 'name="seed"' in page and 'value="1"' in page
    response = as_alice.post(
        url("account_edit", world.account.uuid), {"name": "Demo simulator", "seed": "42"}
    )
    assert response.status_code == 302
    world.account.refresh_from_db()
    assert world.account.credentials == {"seed": 42}


def test_it_keeps_credential_keys_the_form_does_not_show(as_alice, world):
    ProviderAccount.objects.filter(pk=world.account.pk).update(credentials={"seed": 1, "fail_auth": True})
    as_alice.post(url("account_edit", world.account.uuid), {"name": "Renamed", "seed": "2"})
    world.account.refresh_from_db()
    assert world.account.credentials == {"seed": 2, "fail_auth": True}


# --- the simulator, a provider without HTTP


def test_it_tests_and_imports_a_simulator_account(as_alice, world):
    simulator_device_create(account=world.account, device_id="sim-nuki", profile="nuki", name="Keypad")
    assert as_alice.post(url("account_test", world.account.uuid)).status_code == 302
    world.account.refresh_from_db()
    assert world.account.status == AccountStatus.OK

    assert (
        as_alice.post(url("account_import", world.account.uuid), {"property": world.dune.pk}).status_code
        == 302
    )
    lock = Lock.objects.get(provider_account=world.account, vendor_device_id="sim-nuki")
    assert lock.property == world.dune and lock.name == "Keypad"
    assert "no_zeros" in lock.requirements["constraints"]


def test_it_flags_a_simulator_account_that_rejects_its_credentials(as_alice, world):
    ProviderAccount.objects.filter(pk=world.account.pk).update(credentials={"seed": 1, "fail_auth": True})
    as_alice.post(url("account_test", world.account.uuid))
    world.account.refresh_from_db()
    assert world.account.status == AccountStatus.AUTH_FAILED
    assert "401" in world.account.status_detail


def test_it_shows_who_changed_the_credentials_and_when_but_never_the_values(as_alice, world):
    as_alice.post(url("account_create"), {"vendor": "seam", "name": "Main workspace", "api_key": API_KEY,
                                          "webhook_secret": "", "base_url": ""})
    account = ProviderAccount.objects.get(tenant=world.seaside, name="Main workspace")
    as_alice.post(url("account_edit", account.uuid), {"name": "Main workspace", "api_key": "seam_rotated_key_1",
                                                      "webhook_secret": WHSEC, "base_url": ""})
    other = factories.ProviderAccountFactory(tenant=world.seaside, vendor="seam", name="Other")
    as_alice.post(url("account_edit", other.uuid), {"name": "Renamed other", "api_key": "", "base_url": ""})

    page = as_alice.get(url("account_detail", account.uuid))

    history = page.content.decode().split('id="account-history"')[1]
    assert history.index("alice changed the Seam account") < history.index("alice added the Seam account")
    assert "(fields: api_key)" in history and "(signing secret replaced)" in history
    assert "Renamed other" not in history  # another account's history stays on its own page
    assert "seam_rotated_key_1" not in page.content.decode()
    assert_no_secret(page)
