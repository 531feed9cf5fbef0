"""Passwords and sessions (DESIGN §9): Django's validators with a 12-character minimum, a change-password
page, admins signed out when idle, and sessions that end within a working day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WEAK = ["12345678", "48213907", "password1234", "Tr0ub4dor&3"]
STRONG = "correct horse battery staple"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def set_password_url(user) -> str:
    view = resolve(reverse("password_reset_confirm", kwargs={"uidb64": "x", "token": "y"})).func
    generator = view.view_initkwargs.get("token_generator", default_token_generator)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": generator.make_token(user)})


def test_it_refuses_weak_passwords_on_the_set_password_page(client, world):
    world.bob.set_unusable_password()
    world.bob.save()
    form_url = client.get(set_password_url(world.bob), follow=True).redirect_chain[-1][0]
    for weak in WEAK:
        response = client.post(form_url, {"new_password1": weak, "new_password2": weak})
        assert response.status_code == 200, weak
        assert response.context["form"].errors, weak
    world.bob.refresh_from_db()
    assert not world.bob.has_usable_password()


def test_it_refuses_weak_passwords_on_the_change_password_page(client, world):
    client.force_login(world.alice)
    for weak in WEAK:
        response = client.post(
            reverse("password_change"),
            {"old_password": "pw", "new_password1": weak, "new_password2": weak},
        )
        assert response.status_code == 200, weak
        assert "new_password2" in response.context["form"].errors, weak
    world.alice.refresh_from_db()
    assert world.alice.check_password("pw")


def test_it_changes_the_password_and_keeps_the_user_signed_in(client, world):
    client.force_login(world.alice)
    dashboard = client.get(reverse("dashboard", args=["seaside"])).content.decode()
    assert f'href="{reverse("password_change")}"' in dashboard
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert "Change password" in page.content.decode() and 'class="topbar"' in page.content.decode()

    wrong = client.post(
        reverse("password_change"), {"old_password": "nope", "new_password1": STRONG, "new_password2": STRONG}
    )
    assert wrong.status_code == 200 and "old_password" in wrong.context["form"].errors

    done = client.post(
        reverse("password_change"), {"old_password": "pw", "new_password1": STRONG, "new_password2": STRONG}
    )
    assert done.status_code == 302
    world.alice.refresh_from_db()
    assert world.alice.check_password(STRONG)
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 200


def test_it_sends_anonymous_visitors_of_change_password_to_login(client, world):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- sessions


def test_it_signs_out_an_admin_idle_longer_than_the_limit_but_not_staff(client, world, clock):
    limit = settings.SESSION_ADMIN_IDLE_MINUTES
    dashboard = reverse("dashboard", args=["seaside"])
    staff = Client()
    staff.force_login(world.bob)
    assert staff.get(dashboard).status_code == 200
    client.force_login(world.alice)
    assert client.get(dashboard).status_code == 200
    clock.shift(timedelta(minutes=limit - 1))
    assert client.get(dashboard).status_code == 200  # activity restarts the idle clock
    clock.shift(timedelta(minutes=limit - 1))
    assert client.get(dashboard).status_code == 200
    clock.shift(timedelta(minutes=limit + 1))
    response = client.get(dashboard)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in client.session
    # Bob, staff, idle just as long, keeps the normal session age.
    assert staff.get(dashboard).status_code == 200


def test_it_signs_out_an_idle_admin_on_another_tenants_page_too(client, world, clock):
    # Bob is staff in Seaside but admin of Harbor: his session carries admin power, so it idles out.
    from portal.models import Role
    from tests import factories

    factories.MembershipFactory(user=world.bob, tenant=world.harbor, role=Role.ADMIN)
    client.force_login(world.bob)
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 200
    clock.shift(timedelta(minutes=settings.SESSION_ADMIN_IDLE_MINUTES + 1))
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 302


def test_it_ends_every_session_within_a_working_day(client, world, clock):
    client.force_login(world.bob)
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 200
    clock.shift(timedelta(hours=13))
    response = client.get(reverse("dashboard", args=["seaside"]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
