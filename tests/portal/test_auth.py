"""Logging in and out, login throttling, choosing a tenant, and production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings
from django.urls import reverse

from portal.models import Role
from tests import factories

BASE_DIR = Path(__file__).resolve().parents[2]


def login(client, username: str, password: str, ip: str = "127.0.0.1", **meta):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip, **meta)


def test_it_logs_in_with_the_right_password(client, world):
    response = login(client, "alice", "pw")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.alice.pk)


def test_it_refuses_a_wrong_password(client, world):
    response = login(client, "alice", "nope")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_it_locks_the_login_after_repeated_failures_even_with_the_right_password(client, world):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert "_auth_user_id" not in login(client, "alice", "wrong").wsgi_request.session
    response = login(client, "alice", "pw")
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_it_does_not_lock_another_user_out(client, world):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "alice", "wrong", ip="203.0.113.1")
    assert login(client, "bob", "pw", ip="203.0.113.2").status_code == 302
    assert client.session["_auth_user_id"] == str(world.bob.pk)


def test_it_locks_out_an_address_that_sprays_one_password_over_many_usernames(client, world):
    for n in range(settings.AXES_FAILURE_LIMIT):
        assert login(client, f"user{n}", "Spring2025!", ip="198.51.100.7").status_code != 302
    assert login(client, "bob", "pw", ip="198.51.100.7").status_code == 429
    assert login(client, "bob", "pw", ip="203.0.113.2").status_code == 302


def test_it_locks_out_a_username_guessed_from_many_addresses(client, world):
    for n in range(settings.AXES_FAILURE_LIMIT):
        assert login(client, "alice", f"guess-{n}", ip=f"198.51.100.{n + 1}").status_code != 302
    assert login(client, "alice", "pw", ip="203.0.113.9").status_code == 429
    assert login(client, "bob", "pw", ip="203.0.113.9").status_code == 302


def test_it_keeps_counting_a_sprayer_who_logs_in_to_their_own_account_between_guesses(client, world):
    ip = "198.51.100.7"
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, f"user{n}", "Spring2025!", ip=ip)
    assert login(client, "mallory", "pw", ip=ip).status_code == 302
    client.post(reverse("logout"))
    login(client, "olive", "Spring2025!", ip=ip)
    assert login(client, "bob", "pw", ip=ip).status_code == 429


def test_it_ignores_forwarded_for_headers_unless_a_proxy_is_trusted(client, world):
    # A client cannot dodge the per-address count by inventing X-Forwarded-For values.
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"user{n}", "Spring2025!", ip="198.51.100.7", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert login(client, "bob", "pw", ip="198.51.100.7", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_it_counts_each_client_behind_a_trusted_proxy_separately(client, world, settings):
    settings.AXES_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"user{n}", "Spring2025!", ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    # The sprayer is locked out; a colleague behind the same proxy is not.
    assert login(client, "bob", "pw", ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429
    assert login(client, "bob", "pw", ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 302
    client.post(reverse("logout"))
    # Only the entry the trusted proxy wrote counts: a value the sprayer prepends changes nothing.
    spoofed = "192.0.2.1, 198.51.100.7"
    assert login(client, "olive", "pw", ip=proxy, HTTP_X_FORWARDED_FOR=spoofed).status_code == 429


def test_it_sends_anonymous_visitors_to_login(client, world):
    response = client.get(reverse("dashboard", args=["seaside"]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_the_tenant_chooser_to_a_user_in_two_tenants(client, world):
    factories.MembershipFactory(user=world.bob, tenant=world.harbor, role=Role.OWNER)
    client.force_login(world.bob)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("dashboard", args=["seaside"]) in body
    assert reverse("dashboard", args=["harbor"]) in body
    assert "Seaside Stays" in body and "Harbor Homes" in body


def test_it_takes_a_user_with_one_tenant_straight_to_its_dashboard(client, world):
    client.force_login(world.alice)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard", args=["seaside"])


def test_it_logs_out(client, world):
    client.force_login(world.alice)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 302


def test_it_passes_the_deploy_checks_with_production_settings(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for Playwright's event loop; production never does.
        not in {"DATABASE_URL", "DEBUG", "DJANGO_SETTINGS_MODULE", "SECURE_COOKIES", "SECURE_SSL_REDIRECT",
                "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        SECRET_KEY=secrets.token_urlsafe(64),
        DEBUG="false",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        PIN_FINGERPRINT_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="lockstep.example.com",
        PUBLIC_BASE_URL="https://lockstep.example.com",
        LOCKSTEP_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
