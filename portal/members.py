"""Tenant administration services: members, roles, owners' properties and tenant defaults.

Every change writes an Activity row. A tenant never loses its last admin: demoting or removing the only
admin is refused with a ValidationError, so nobody can lock themselves (and everyone) out of Settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from locks.activity import activity_record
from portal.models import Membership, Property, Role, Tenant

TENANT_DEFAULT_FIELDS = (
    "timezone",
    "default_before_minutes",
    "default_after_minutes",
    "default_code_length",
    "default_pin_policy",
    "alert_emails_enabled",
)


@dataclass(frozen=True)
class Invitation:
    membership: Membership
    created_user: bool
    # Absolute one-time link for a user who has no password yet; empty for existing users.
    set_password_url: str


def _record(
    *,
    tenant: Tenant,
    actor: AbstractBaseUser | None,
    verb: str,
    message: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    activity_record(tenant_id=tenant.pk, actor=actor, verb=verb, message=message, now=now, data=data)


def set_password_url(user: AbstractBaseUser) -> str:
    """A link that lets `user` choose a password. It stops working once the password is set."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def _owned_properties(tenant: Tenant, properties: Iterable[Property]) -> list[Property]:
    chosen = list(properties)
    if any(p.tenant_id != tenant.pk for p in chosen):
        raise ValidationError({"properties": "Unknown property."})
    return chosen


def _is_last_admin(membership: Membership) -> bool:
    if membership.role != Role.ADMIN:
        return False
    admins = Membership.objects.for_tenant(membership.tenant).filter(role=Role.ADMIN)
    return not admins.exclude(pk=membership.pk).exists()


@transaction.atomic
def member_invite(
    *,
    tenant: Tenant,
    email: str,
    role: str,
    actor: AbstractBaseUser,
    now: datetime,
    properties: Iterable[Property] = (),
) -> Invitation:
    """Add the person with this email to the tenant, creating a password-less user if they are new."""
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": "Choose admin, staff or owner."})
    owned = _owned_properties(tenant, properties) if role == Role.OWNER else []
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).order_by("pk").first()
    created_user = user is None
    if user is None:
        if User.objects.filter(username__iexact=email).exists():
            raise ValidationError({"email": "A user with this login already exists with another email."})
        user = User(username=email, email=email)
        user.set_unusable_password()
        user.save()
    elif Membership.objects.filter(user=user, tenant=tenant).exists():
        raise ValidationError({"email": "This person is already a member of this tenant."})
    membership = Membership.objects.create(user=user, tenant=tenant, role=role)
    if owned:
        membership.owned_properties.set(owned)
    _record(
        tenant=tenant,
        actor=actor,
        verb="member.invited",
        message=f"{actor} invited {email} as {membership.get_role_display()}",
        data={"membership_id": membership.pk, "role": role, "property_ids": [p.pk for p in owned]},
        now=now,
    )
    # Only a user this invitation created gets a link: a link for an existing account would let this
    # tenant's admin choose the password of someone who also belongs to other tenants.
    link = set_password_url(user) if created_user else ""
    return Invitation(membership=membership, created_user=created_user, set_password_url=link)


def member_password_link(*, membership: Membership, actor: AbstractBaseUser, now: datetime) -> str:
    """A fresh set-password link for an invited member who has not chosen a password yet.

    Refused for anyone who has a password, belongs to another tenant too, or is platform staff: a tenant
    admin must never be able to take over an account that reaches beyond their tenant.
    """
    user = membership.user
    if user.has_usable_password() or user.is_staff or user.is_superuser:
        raise ValidationError("This member has already chosen a password; they can log in as usual.")
    if Membership.objects.filter(user=user).exclude(tenant_id=membership.tenant_id).exists():
        raise ValidationError(
            "This person also belongs to another team; ask them to use their first invitation."
        )
    _record(
        tenant=membership.tenant,
        actor=actor,
        verb="member.password_link",
        message=f"{actor} made a new set-password link for {user}",
        data={"membership_id": membership.pk},
        now=now,
    )
    return set_password_url(user)


@transaction.atomic
def member_change_role(
    *, membership: Membership, role: str, actor: AbstractBaseUser, now: datetime
) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": "Choose admin, staff or owner."})
    # Lock the tenant's admin rows so two admins demoting each other at once cannot both succeed.
    list(Membership.objects.select_for_update().filter(tenant_id=membership.tenant_id, role=Role.ADMIN))
    membership.refresh_from_db()
    if role == membership.role:
        return membership
    if _is_last_admin(membership):
        raise ValidationError({"role": "This is the tenant's only admin. Make someone else admin first."})
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    if role != Role.OWNER:
        membership.owned_properties.clear()
    _record(
        tenant=membership.tenant,
        actor=actor,
        verb="member.role_changed",
        message=f"{actor} changed {membership.user} from {Role(old).label} to {membership.get_role_display()}",
        data={"membership_id": membership.pk, "from": old, "to": role},
        now=now,
    )
    return membership


@transaction.atomic
def member_set_properties(
    *, membership: Membership, properties: Iterable[Property], actor: AbstractBaseUser, now: datetime
) -> Membership:
    """The properties an owner member can see. Only owners own properties."""
    owned = _owned_properties(membership.tenant, properties)
    if membership.role != Role.OWNER and owned:
        raise ValidationError({"properties": "Only owners are linked to properties."})
    before = set(membership.owned_properties.values_list("pk", flat=True))
    membership.owned_properties.set(owned)
    after = {p.pk for p in owned}
    if before != after:
        _record(
            tenant=membership.tenant,
            actor=actor,
            verb="member.properties_changed",
            message=f"{actor} set the properties of {membership.user}: "
            + (", ".join(sorted(p.name for p in owned)) or "none"),
            data={"membership_id": membership.pk, "property_ids": sorted(after)},
            now=now,
        )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: AbstractBaseUser, now: datetime) -> None:
    list(Membership.objects.select_for_update().filter(tenant_id=membership.tenant_id, role=Role.ADMIN))
    if _is_last_admin(membership):
        raise ValidationError("This is the tenant's only admin and cannot be removed.")
    _record(
        tenant=membership.tenant,
        actor=actor,
        verb="member.removed",
        message=f"{actor} removed {membership.user} ({membership.get_role_display()})",
        data={"membership_id": membership.pk, "user_id": membership.user_id, "role": membership.role},
        now=now,
    )
    membership.delete()


@transaction.atomic
def tenant_update_defaults(
    *, tenant: Tenant, actor: AbstractBaseUser, now: datetime, **changes: Any
) -> Tenant:
    unknown = set(changes) - set(TENANT_DEFAULT_FIELDS)
    if unknown:
        raise TypeError(f"not a tenant default: {', '.join(sorted(unknown))}")
    changed = {name: value for name, value in changes.items() if getattr(tenant, name) != value}
    if not changed:
        return tenant
    for name, value in changed.items():
        setattr(tenant, name, value)
    tenant.full_clean()
    tenant.save(update_fields=list(changed))
    _record(
        tenant=tenant,
        actor=actor,
        verb="tenant.defaults_changed",
        message=f"{actor} changed tenant defaults: {', '.join(sorted(changed))}",
        data={name: str(value) for name, value in changed.items()},
        now=now,
    )
    return tenant
