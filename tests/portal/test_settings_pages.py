"""Settings: members, roles, owners' properties and tenant defaults (admins only)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from locks.models import Activity
from portal.models import Membership, Role, Tenant
from tests import factories
from tests.conftest import verified_client_for

User = get_user_model()


def url(name: str, *args) -> str:
    return reverse(name, args=["seaside", *args])


@pytest.fixture
def as_alice(client, world):
    return verified_client_for(client, world.alice)  # an admin with a second factor (portal/two_factor.py)


def membership(world, user) -> Membership:
    return Membership.objects.get(user=user, tenant=world.seaside)


# --- who may enter


@pytest.mark.parametrize("name", ["settings", "settings_members", "settings_defaults"])
def test_it_shows_settings_pages_to_admins_only(client, world, name):
    verified_client_for(client, world.alice)
    assert client.get(url(name)).status_code == 200
    for user in (world.bob, world.olive):
        client.force_login(user)
        assert client.get(url(name)).status_code == 403
        assert client.post(url(name), {"email": "x@example.com", "role": "admin"}).status_code == 403
    verified_client_for(client, world.mallory)
    assert client.get(url(name)).status_code == 404
    assert Membership.objects.filter(user__email="x@example.com").count() == 0


def test_it_links_every_settings_area_from_the_landing_page(as_alice, world):
    body = as_alice.get(url("settings")).content.decode()
    for name in ("settings_members", "settings_defaults", "providers:account_list", "api_key_list"):
        assert f'href="{url(name)}"' in body
    assert "Admin: 1 · Staff: 1 · Owner: 1" in body


def test_it_forbids_staff_to_promote_themselves(client, world):
    client.force_login(world.bob)
    bob = membership(world, world.bob)
    response = client.post(url("settings_member_edit", bob.pk), {"role": "admin"})
    assert response.status_code == 403
    bob.refresh_from_db()
    assert bob.role == Role.STAFF


def test_it_gives_404_for_another_tenants_member(as_alice, world):
    mallory = Membership.objects.get(user=world.mallory)
    assert as_alice.get(url("settings_member_edit", mallory.pk)).status_code == 404
    assert as_alice.post(url("settings_member_edit", mallory.pk), {"role": "staff"}).status_code == 404
    assert as_alice.post(url("settings_member_remove", mallory.pk)).status_code == 404
    mallory.refresh_from_db()
    assert mallory.role == Role.ADMIN


# --- members list and invitations


def test_it_lists_the_members_with_roles_and_owned_properties(as_alice, world):
    body = as_alice.get(url("settings_members")).content.decode()
    for name in ("alice", "bob", "olive"):
        assert name in body
    assert "mallory" not in body
    assert "Dune Cottage" in body


# Invitations themselves (pending rows, acceptance, same answer for any address): test_invitations.py.


def test_it_never_gives_an_admin_a_link_for_a_passwordless_user_of_another_tenant(as_alice, world):
    # Someone Harbor invited who has not chosen a password yet: Seaside's admin must not get to choose it,
    # nor attach them: they are asked by email and join only if they accept.
    invitee = User.objects.create(username="ivy@example.com", email="ivy@example.com")
    invitee.set_unusable_password()
    invitee.save()
    factories.MembershipFactory(user=invitee, tenant=world.harbor, role=Role.STAFF)
    response = as_alice.post(url("settings_members"), {"email": "ivy@example.com", "role": "staff"})
    assert response.status_code == 302
    assert not Membership.objects.filter(user=invitee, tenant=world.seaside).exists()
    follow = as_alice.get(response["Location"]).content.decode()
    assert "set-password/" not in follow
    assert not re.search(r"(?<!/settings)/invitations/", follow)  # the accept link went to ivy only


def test_it_offers_no_set_password_link_on_any_member_page(as_alice, world):
    passwordless = factories.UserFactory(username="pia", email="pia@example.com")
    passwordless.set_unusable_password()
    passwordless.save()
    pia = factories.MembershipFactory(user=passwordless, tenant=world.seaside, role=Role.STAFF)
    for member in (pia, membership(world, world.bob)):
        page = as_alice.get(url("settings_member_edit", member.pk)).content.decode()
        assert "set-password" not in page.lower()
        legacy = f"/t/seaside/settings/members/{member.pk}/password-link/"
        assert as_alice.post(legacy).status_code == 404
    assert not Activity.objects.filter(verb="member.password_link").exists()


def test_it_invites_an_owner_with_their_properties(as_alice, world):
    from portal.models import Invitation

    response = as_alice.post(
        url("settings_members"),
        {"email": "pat@example.com", "role": "owner", "properties": [world.harbor_view.pk]},
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="pat@example.com")
    assert (invitation.tenant, invitation.role) == (world.seaside, Role.OWNER)
    assert list(invitation.properties.all()) == [world.harbor_view]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-email", "role": "staff"}, "email", "Enter a valid email address."),
        ({"email": "bob@example.com", "role": "staff"}, "email", "already a member"),
        ({"email": "new@example.com", "role": "root"}, "role", "Select a valid choice"),
        ({"email": "new@example.com", "role": "staff", "properties": ["1"]}, "properties", "Only owners"),
    ],
)
def test_it_rejects_a_bad_invitation_next_to_the_field_and_saves_nothing(
    as_alice, world, data, field, message
):
    users, members = User.objects.count(), Membership.objects.count()
    data = {**data, "properties": [world.dune.pk] if "properties" in data else []}
    response = as_alice.post(url("settings_members"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(message in e for e in errors.get(field, [])), errors
    assert f'id="err_{field}"' in response.content.decode()
    assert (User.objects.count(), Membership.objects.count()) == (users, members)
    assert not Activity.objects.filter(verb="member.invited").exists()


def test_it_refuses_another_tenants_property_for_an_owner(as_alice, world):
    response = as_alice.post(
        url("settings_members"),
        {"email": "pat@example.com", "role": "owner", "properties": [world.harbor_property.pk]},
    )
    assert response.status_code == 400
    assert "properties" in response.context["form"].errors
    assert not User.objects.filter(email="pat@example.com").exists()


# --- roles, properties, removal


def test_it_changes_a_role_and_links_an_owner_to_properties(as_alice, world):
    bob = membership(world, world.bob)
    response = as_alice.post(
        url("settings_member_edit", bob.pk),
        {"role": "owner", "properties": [world.dune.pk, world.harbor_view.pk]},
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.role == Role.OWNER
    assert set(bob.owned_properties.all()) == {world.dune, world.harbor_view}
    verbs = set(Activity.objects.filter(tenant=world.seaside).values_list("verb", flat=True))
    assert {"member.role_changed", "member.properties_changed"} <= verbs


def test_it_unlinks_properties_when_an_owner_becomes_staff(as_alice, world):
    olive = world.olive_membership
    assert as_alice.post(url("settings_member_edit", olive.pk), {"role": "staff"}).status_code == 302
    olive.refresh_from_db()
    assert olive.role == Role.STAFF
    assert not olive.owned_properties.exists()


def test_it_refuses_to_demote_the_only_admin(as_alice, world):
    alice = membership(world, world.alice)
    response = as_alice.post(url("settings_member_edit", alice.pk), {"role": "staff"})
    assert response.status_code == 400
    assert "only admin" in response.content.decode()
    alice.refresh_from_db()
    assert alice.role == Role.ADMIN
    assert not Activity.objects.filter(verb="member.role_changed").exists()


def test_it_lets_an_admin_step_down_when_another_admin_remains(as_alice, world):
    Membership.objects.filter(user=world.bob).update(role=Role.ADMIN)
    alice = membership(world, world.alice)
    assert as_alice.post(url("settings_member_edit", alice.pk), {"role": "staff"}).status_code == 302
    alice.refresh_from_db()
    assert alice.role == Role.STAFF
    assert as_alice.get(url("settings")).status_code == 403


def test_it_removes_a_member(as_alice, world):
    bob = membership(world, world.bob)
    assert as_alice.get(url("settings_member_remove", bob.pk)).status_code == 200
    assert as_alice.post(url("settings_member_remove", bob.pk)).status_code == 302
    assert not Membership.objects.filter(pk=bob.pk).exists()
    assert User.objects.filter(pk=world.bob.pk).exists()
    assert Activity.objects.filter(verb="member.removed", actor=world.alice).exists()


def test_it_refuses_to_remove_the_only_admin(as_alice, world):
    alice = membership(world, world.alice)
    response = as_alice.post(url("settings_member_remove", alice.pk))
    assert response.status_code == 400
    assert Membership.objects.filter(pk=alice.pk).exists()


# --- tenant defaults


def test_it_saves_tenant_defaults(as_alice, world):
    response = as_alice.post(
        url("settings_defaults"),
        {
            "timezone": "Europe/Lisbon",
            "default_before_minutes": "45",
            "default_after_minutes": "15",
            "default_code_length": "4",
            "default_pin_policy": "phone_last4",
            "alert_emails_enabled": "",
        },
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=world.seaside.pk)
    assert (tenant.timezone, tenant.default_before_minutes, tenant.default_after_minutes) == (
        "Europe/Lisbon",
        45,
        15,
    )
    assert (tenant.default_code_length, tenant.default_pin_policy, tenant.alert_emails_enabled) == (
        4,
        "phone_last4",
        False,
    )
    activity = Activity.objects.get(verb="tenant.defaults_changed")
    assert "timezone" in activity.message


def test_alice_sets_the_maximum_early_exposure(as_alice, world):
    response = as_alice.post(url("settings_defaults"), {
        "timezone": "America/New_York", "default_before_minutes": "30", "default_after_minutes": "30",
        "default_code_length": "6", "default_pin_policy": "random", "alert_emails_enabled": "on",
        "max_early_exposure_hours": "3",
    })

    assert response.status_code == 302
    assert Tenant.objects.get(pk=world.seaside.pk).max_early_exposure_hours == 3
    assert Tenant.objects.get(pk=world.harbor.pk).max_early_exposure_hours == 6


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Mars/Olympus_Mons", "not a known time zone"),
        ("default_code_length", "3", "from 4 to 8"),
        ("default_code_length", "12", "from 4 to 8"),
        ("default_before_minutes", "-5", "greater than or equal to 0"),
        ("default_after_minutes", "5000", "At most 1440"),
        ("default_pin_policy", "birthday", "Select a valid choice"),
        ("max_early_exposure_hours", "0", "from 1 to 48 hours"),
        ("max_early_exposure_hours", "72", "from 1 to 48 hours"),
    ],
)
def test_it_rejects_bad_defaults_next_to_the_field_and_saves_nothing(as_alice, world, field, value, message):
    data = {
        "timezone": "Europe/Lisbon",
        "default_before_minutes": "45",
        "default_after_minutes": "15",
        "default_code_length": "6",
        "default_pin_policy": "random",
        "alert_emails_enabled": "on",
        field: value,
    }
    response = as_alice.post(url("settings_defaults"), data)
    assert response.status_code == 400
    assert any(message in e for e in response.context["form"].errors[field])
    assert f'id="err_{field}"' in response.content.decode()
    tenant = Tenant.objects.get(pk=world.seaside.pk)
    assert (tenant.timezone, tenant.default_before_minutes) == ("America/New_York", 30)
    assert not Activity.objects.filter(verb="tenant.defaults_changed").exists()
