"""Joining a tenant takes the invitee's consent (DESIGN §9).

An admin's invitation is a pending row and an email to the invitee; nothing is attached and no password
can be chosen until the invitee accepts through that link — signed in, if the address already has an
account. The inviter gets the same answer whether or not the address has an account, and never a link.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.urls import resolve, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from locks.models import Activity
from portal import members
from portal.models import Membership, Role
from tests import factories
from tests.conftest import verified_client_for

User = get_user_model()
LINK = re.compile(r"https?://[^/\s]+(/invitations/[^\s]+/)")
STRONG = "a-long-Passphrase-9"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def invite(client, django_capture_on_commit_callbacks):
    """Sign in as `inviter` and submit the invite form; the invitation email goes out on commit."""

    def _invite(inviter, email: str, role: str = "staff", tenant: str = "seaside", properties=(), **kw):
        verified_client_for(client, inviter)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("settings_members", args=[tenant]),
                {"email": email, "role": role, "properties": [p.pk for p in properties]},
                **kw,
            )

    return _invite


def link_for(email: str) -> str:
    """The path of the newest invitation link mailed to `email`."""
    for message in reversed(mail.outbox):
        if message.to == [email]:
            match = LINK.search(message.body)
            assert match, message.body
            return match.group(1)
    raise AssertionError(f"no mail to {email}")


def normalised(body: str, email: str) -> str:
    body = re.sub(r"invitations/\d+/", "invitations/N/", body.replace(email, "EMAIL"))
    return re.sub(r'(csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+', r"\1", body)


def seaside_role(email: str) -> str | None:
    m = Membership.objects.filter(user__email=email, tenant__slug="seaside").first()
    return m.role if m else None


# --- inviting


def test_it_emails_a_pending_invitation_and_adds_nobody_yet(invite, client, world):
    response = invite(world.alice, "Nina@Example.com", role="staff")
    assert response.status_code == 302
    assert not User.objects.filter(email__iexact="nina@example.com").exists()
    assert not Membership.objects.filter(user__email__iexact="nina@example.com").exists()
    [message] = mail.outbox
    assert message.to == ["nina@example.com"]
    assert "Seaside Stays" in message.body
    page = client.get(response["Location"]).content.decode()
    assert "nina@example.com" in page and "Pending invitations" in page
    assert link_for("nina@example.com") not in page and "set-password" not in page
    activity = Activity.objects.get(verb="member.invited")
    assert activity.actor == world.alice and activity.tenant == world.seaside


def test_it_stores_only_a_hash_of_the_invitation_token(invite, world):
    from portal.models import Invitation

    invite(world.alice, "nina@example.com")
    token = link_for("nina@example.com").rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get()
    stored = [str(getattr(invitation, f.attname)) for f in Invitation._meta.concrete_fields]
    assert not any(token in value for value in stored)


def test_it_answers_the_inviter_the_same_for_an_existing_and_a_new_address(invite, client, world):
    from portal.models import Invitation

    factories.UserFactory(username="otto", email="otto@example.com")
    answers = []
    with time_machine.travel(T0, tick=False):
        for email in ("otto@example.com", "nina@example.com", "mallory@example.com"):
            response = invite(world.alice, email, role="admin", follow=True)
            answers.append(
                (
                    response.status_code,
                    [url for url, _ in response.redirect_chain],
                    [normalised(str(m), email) for m in response.context["messages"]],
                    normalised(response.content.decode(), email),
                )
            )
            Invitation.objects.all().delete()  # so each page lists only this invitation
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 200 and answers[0][1]
    assert [seaside_role(e) for e in ("otto@example.com", "mallory@example.com")] == [None, None]


def test_it_reinvites_with_a_fresh_link_and_kills_the_old_one(invite, client, world):
    invite(world.alice, "nina@example.com")
    first = link_for("nina@example.com")
    invite(world.alice, "nina@example.com", role="owner")
    second = link_for("nina@example.com")
    assert first != second
    client.logout()
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200


# --- accepting


def test_it_lets_a_new_address_choose_a_password_and_join(invite, client, world):
    invite(world.alice, "nina@example.com", role="staff")
    link = link_for("nina@example.com")
    client.logout()
    page = client.get(link)
    assert page.status_code == 200
    assert "Seaside Stays" in page.content.decode()

    weak = client.post(link, {"new_password1": "password1234", "new_password2": "password1234"})
    assert weak.status_code == 400
    assert not User.objects.filter(email="nina@example.com").exists()

    done = client.post(link, {"new_password1": STRONG, "new_password2": STRONG})
    assert done.status_code == 302
    assert done["Location"] == reverse("dashboard", args=["seaside"])
    nina = User.objects.get(email="nina@example.com")
    assert nina.check_password(STRONG)
    assert seaside_role("nina@example.com") == Role.STAFF
    assert client.session["_auth_user_id"] == str(nina.pk)
    assert Activity.objects.filter(verb="member.joined", tenant=world.seaside).exists()

    client.logout()
    assert client.get(link).status_code == 404
    assert client.post(link, {"new_password1": "x" + STRONG, "new_password2": "x" + STRONG}).status_code == 404
    nina.refresh_from_db()
    assert nina.check_password(STRONG)
    login = client.post(reverse("login"), {"username": "nina@example.com", "password": STRONG})
    assert login.status_code == 302


def test_it_lets_an_existing_user_join_only_by_signing_in_and_accepting(invite, client, world):
    otto = factories.UserFactory(username="otto", email="otto@example.com")
    invite(world.alice, "otto@example.com", role="owner", properties=[world.harbor_view])
    link = link_for("otto@example.com")

    # Anyone holding the link but not signed in as otto: asked to sign in, nothing changes.
    client.logout()
    page = client.get(link)
    assert page.status_code == 200
    assert f"{reverse('login')}?next={link}" in page.content.decode()
    assert client.post(link, {"new_password1": STRONG, "new_password2": STRONG}).status_code == 302
    otto.refresh_from_db()
    assert otto.check_password("pw")
    assert seaside_role("otto@example.com") is None

    # Signed in as someone else: refused.
    verified_client_for(client, world.mallory)
    assert "another address" in client.get(link).content.decode()
    assert client.post(link).status_code == 403
    assert not Membership.objects.filter(user=world.mallory, tenant=world.seaside).exists()

    client.force_login(otto)
    assert "Join Seaside Stays" in client.get(link).content.decode()
    response = client.post(link)
    assert response.status_code == 302
    membership = Membership.objects.get(user=otto, tenant=world.seaside)
    assert membership.role == Role.OWNER
    assert list(membership.owned_properties.all()) == [world.harbor_view]
    assert client.post(link).status_code == 404
    assert Membership.objects.filter(user=otto).count() == 1


def test_it_refuses_an_expired_invitation(invite, client, world):
    with time_machine.travel(T0, tick=False):
        invite(world.alice, "nina@example.com")
    link = link_for("nina@example.com")
    client.logout()
    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        assert client.get(link).status_code == 404
        assert client.post(link, {"new_password1": STRONG, "new_password2": STRONG}).status_code == 404
    assert not User.objects.filter(email="nina@example.com").exists()


def test_it_lists_pending_invitations_with_revoke(invite, client, world):
    from portal.models import Invitation

    invite(world.alice, "nina@example.com", role="owner")
    link = link_for("nina@example.com")
    invitation = Invitation.objects.get()
    page = client.get(reverse("settings_members", args=["seaside"])).content.decode()
    revoke = reverse("settings_invitation_revoke", args=["seaside", invitation.pk])
    assert f'action="{revoke}"' in page
    response = client.post(revoke)
    assert response.status_code == 302
    assert "Pending invitations" not in client.get(response["Location"]).content.decode()
    assert Activity.objects.filter(verb="member.invitation_revoked", actor=world.alice).exists()
    client.logout()
    assert client.get(link).status_code == 404


# --- the reported takeover


def set_password_path(user) -> str:
    """A set-password link minted the way the set-password view checks it (as the old invite page did)."""
    view = resolve(reverse("password_reset_confirm", kwargs={"uidb64": "x", "token": "y"})).func
    generator = view.view_initkwargs.get("token_generator", default_token_generator)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": generator.make_token(user)})


def link_works(client, path: str) -> bool:
    client.logout()
    return bool(client.get(path, follow=True).context["validlink"])


def test_mallory_cannot_become_alices_admin_through_an_address_they_both_invite(invite, client, world):
    victim = "x@example.com"
    mallory_answer = invite(world.mallory, victim, role="staff", tenant="harbor", follow=True)
    body = mallory_answer.content.decode()
    harbor_link = link_for(victim)  # went to the invitee's inbox ...
    assert harbor_link not in body and "set-password" not in body  # ... and nowhere near Mallory

    invite(world.alice, victim, role="admin")
    assert seaside_role(victim) is None
    assert not User.objects.filter(email=victim).exists()

    # Signed in as herself, Harbor's link is not hers to accept ...
    verified_client_for(client, world.mallory)
    assert client.post(harbor_link).status_code == 403
    assert not Membership.objects.filter(user=world.mallory, tenant=world.seaside).exists()
    # ... and even using it as the invitee would, it reaches no further than Harbor.
    client.logout()
    client.post(harbor_link, {"new_password1": STRONG, "new_password2": STRONG})
    assert seaside_role(victim) is None
    # Logging in with the password she chose gets her nothing in Seaside.
    client.logout()
    client.post(reverse("login"), {"username": victim, "password": STRONG})
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 404


def test_it_kills_a_legacy_set_password_link_when_memberships_change(invite, client, world):
    # An account left password-less by the old invite page, whose link Harbor's admin saw.
    ivy = User.objects.create(username="ivy@example.com", email="ivy@example.com")
    ivy.set_unusable_password()
    ivy.save()
    factories.MembershipFactory(user=ivy, tenant=world.harbor, role=Role.STAFF)
    mallorys_link = set_password_path(ivy)
    assert link_works(client, mallorys_link)

    invite(world.alice, "ivy@example.com", role="admin")
    client.force_login(ivy)  # ivy herself, signed in some other way, accepts
    assert client.post(link_for("ivy@example.com")).status_code == 302
    assert seaside_role("ivy@example.com") == Role.ADMIN
    assert not link_works(client, mallorys_link)


@pytest.mark.parametrize("change", ["role", "removed", "joined"])
def test_it_kills_open_set_password_links_on_any_membership_change(client, world, change):
    from django.utils import timezone

    bob = world.bob
    bob.set_unusable_password()
    bob.save()
    link = set_password_path(bob)
    assert link_works(client, link)
    membership = Membership.objects.get(user=bob, tenant=world.seaside)
    now = timezone.now()
    if change == "role":
        members.member_change_role(membership=membership, role=Role.OWNER, actor=world.alice, now=now)
    elif change == "removed":
        members.member_remove(membership=membership, actor=world.alice, now=now)
    else:
        factories.MembershipFactory(user=bob, tenant=world.harbor, role=Role.STAFF)
    assert not link_works(client, link)
