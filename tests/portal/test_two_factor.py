"""Two-factor sign-in (DESIGN §9): admins need it before provider accounts, API keys and members; wrong
codes are refused and throttled; recovery codes work once each; other sessions can be ended."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import RecoveryCode
from tests.conftest import verified_client_for

SETUP = "/account/two-factor/setup/"
VERIFY = "/account/two-factor/verify/"


def _protected(world) -> list[str]:
    return [
        reverse("providers:account_list", args=["seaside"]),
        reverse("providers:account_detail", args=["seaside", world.account.uuid]),
        reverse("api_key_list", args=["seaside"]),
        reverse("settings_members", args=["seaside"]),
    ]


def _code(device: TOTPDevice, *, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def _device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


@pytest.mark.django_db
def test_an_admin_without_a_second_factor_is_sent_to_set_one_up(client, world):
    client.force_login(world.alice)
    for url in _protected(world):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(SETUP) and "next=" in response["Location"]
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 200  # daily work is not held up
    assert client.get(reverse("settings_defaults", args=["seaside"])).status_code == 200


@pytest.mark.django_db
def test_an_admin_with_an_authenticator_but_an_unverified_session_is_asked_for_the_code(client, world):
    _device(world.alice)
    client.force_login(world.alice)
    for url in [*_protected(world), reverse("dashboard", args=["seaside"])]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(VERIFY)


@pytest.mark.django_db
def test_staff_need_no_second_factor_and_mallory_still_gets_404(client, world):
    client.force_login(world.bob)
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 200
    assert client.get(reverse("api_key_list", args=["seaside"])).status_code == 403
    verified_client_for(client, world.mallory)
    assert client.get(reverse("providers:account_detail", args=["harbor", world.account.uuid])).status_code == 404


@pytest.mark.django_db
def test_alice_sets_up_an_authenticator_and_sees_her_recovery_codes_once(client, world):
    client.force_login(world.alice)
    next_url = reverse("providers:account_list", args=["seaside"])
    page = client.get(f"{SETUP}?next={next_url}").content.decode()
    device = TOTPDevice.objects.get(user=world.alice, confirmed=False)
    secret = re.search(r'id="totp-secret">([A-Z2-7=]+)<', page).group(1)
    assert "<svg" in page and "data:" not in page  # the QR code is markup: the CSP allows no data: images

    done = client.post(SETUP, {"code": _code(device), "next": next_url})

    body = done.content.decode()
    codes = re.findall(r"<code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code>", body)
    assert len(codes) == 10 and secret not in body
    device.refresh_from_db()
    assert device.confirmed
    stored = list(RecoveryCode.objects.values_list("digest", flat=True))
    assert len(stored) == 10 and not set(codes) & set(stored)  # hashed at rest
    assert client.get(next_url).status_code == 200  # this session is verified
    home = client.get("/account/two-factor/").content.decode()
    assert "Recovery codes left: <strong>10</strong>" in home and codes[0] not in home
    assert client.get(SETUP).status_code == 302  # the secret is not shown again


@pytest.mark.django_db
def test_a_wrong_code_is_refused_and_the_next_tries_are_throttled(client, world):
    device = _device(world.alice)
    client.force_login(world.alice)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        wrong = client.post(VERIFY, {"code": "000000" if _code(device) != "000000" else "111111"})
        assert "That code is not right." in wrong.content.decode()
        throttled = client.post(VERIFY, {"code": _code(device)})
        assert "Too many wrong codes" in throttled.content.decode()
        assert client.get(_protected(world)[0]).status_code == 302
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        response = client.post(VERIFY, {"code": _code(device), "next": _protected(world)[0]})
        assert response.status_code == 302 and response["Location"] == _protected(world)[0]
        assert client.get(_protected(world)[0]).status_code == 200


@pytest.mark.django_db
def test_recovery_codes_work_once_each(client, world):
    from portal.two_factor import recovery_codes_issue

    _device(world.alice)
    codes = recovery_codes_issue(user=world.alice)
    client.force_login(world.alice)

    assert client.post(VERIFY, {"code": codes[0].upper()}).status_code == 302  # as typed off paper
    assert client.get(_protected(world)[0]).status_code == 200
    client.logout()
    client.force_login(world.alice)
    again = client.post(VERIFY, {"code": codes[0]})
    assert again.status_code == 200 and "not right" in again.content.decode()
    assert RecoveryCode.objects.filter(used_at__isnull=True).count() == 9


@pytest.mark.django_db
def test_staff_may_turn_it_on_and_are_then_asked_for_the_code_after_signing_in(client, world):
    client.force_login(world.bob)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=world.bob)
    client.post(SETUP, {"code": _code(device)})
    client.logout()

    client.force_login(world.bob)
    response = client.get(reverse("dashboard", args=["seaside"]))
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)


@pytest.mark.django_db
def test_alice_signs_out_her_other_sessions(client, world):
    from django.test import Client

    other = Client()
    other.force_login(world.alice)
    bobs = Client()
    bobs.force_login(world.bob)
    client.force_login(world.alice)

    assert client.post("/account/sessions/end-others/").status_code == 302

    assert other.get(reverse("dashboard", args=["seaside"])).status_code == 302  # to the login page
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 200
    assert bobs.get(reverse("dashboard", args=["seaside"])).status_code == 200
