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


def login(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


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
        login(client, "alice", "wrong")
    assert login(client, "bob", "pw").status_code == 302
    assert client.session["_auth_user_id"] == str(world.bob.pk)


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
