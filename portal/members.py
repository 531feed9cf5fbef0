"""Tenant administration services: members, roles, owners' properties and tenant defaults.

Every change writes an Activity row. A tenant never loses its last admin: demoting or removing the only
admin is refused with a ValidationError, so nobody can lock themselves (and everyone) out of Settings.

Joining takes the invitee's consent (DESIGN §9): an invitation is a pending row and an email to the
invitee, never a membership or a password for the inviter to hand out. The inviter's answer is the same
whether or not the address has an account.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse

from locks.activity import activity_record
from locks.lead import tenant_codes_retime
from portal.models import Invitation, Membership, Property, Role, Tenant
from portal.properties import properties_follow_defaults

TENANT_DEFAULT_FIELDS = (
    "timezone",
    "default_before_minutes",
    "default_after_minutes",
    "default_code_length",
    "default_pin_policy",
    "alert_emails_enabled",
    "max_early_exposure_hours",
)
INVITATION_VALID_FOR = timedelta(days=7)


def _record(
    *,
    tenant: Tenant,
    actor: User | None,
    verb: str,
    message: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    activity_record(tenant_id=tenant.pk, actor=actor, verb=verb, message=message, now=now, data=data)


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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _send_invitation(*, invitation: Invitation, token: str, inviter: str) -> None:
    link = settings.PUBLIC_BASE_URL + reverse("invitation_accept", kwargs={"token": token})
    context = {"invitation": invitation, "inviter": inviter, "link": link}
    body = render_to_string("registration/invitation_email.txt", context)
    subject = f"[Lockstep] You are invited to {invitation.tenant}"
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])


@transaction.atomic
def member_invite(
    *,
    tenant: Tenant,
    email: str,
    role: str,
    actor: User,
    now: datetime,
    properties: Iterable[Property] = (),
) -> Invitation:
    """Email `email` an invitation to join `tenant` as `role`; nobody is attached until they accept.

    What the inviter learns must not depend on whether the address has an account, so nothing here
    looks accounts up beyond this tenant's own members, and the link goes only into the invitee's email.
    Inviting an address again replaces its open invitation (and kills the old link).
    """
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": "Choose admin, staff or owner."})
    owned = _owned_properties(tenant, properties) if role == Role.OWNER else []
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise ValidationError({"email": "This person is already a member of this tenant."})
    open_invitations = Invitation.objects.for_tenant(tenant).filter(
        email=email, accepted_at__isnull=True, revoked_at__isnull=True
    )
    open_invitations.update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=_token_hash(token),
        invited_by=actor,
        created_at=now,
        expires_at=now + INVITATION_VALID_FOR,
    )
    invitation.properties.set(owned)
    _record(
        tenant=tenant,
        actor=actor,
        verb="member.invited",
        message=f"{actor} invited {email} as {invitation.get_role_display()}",
        data={"invitation_id": invitation.pk, "role": role, "property_ids": [p.pk for p in owned]},
        now=now,
    )
    # After commit, so a rolled-back invitation sends nothing; robust, so a mail server that is down
    # does not turn a saved invitation into an error page (the admin can invite again).
    transaction.on_commit(
        lambda: _send_invitation(invitation=invitation, token=token, inviter=str(actor)), robust=True
    )
    return invitation


def open_invitations(tenant: Tenant) -> QuerySet[Invitation]:
    """Invitations not yet accepted or revoked (expired ones too, so an admin sees and can clear them)."""
    return (
        Invitation.objects.for_tenant(tenant)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("email")
    )


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User, now: datetime) -> None:
    revoked = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    if not revoked:
        return
    _record(
        tenant=invitation.tenant,
        actor=actor,
        verb="member.invitation_revoked",
        message=f"{actor} revoked the invitation of {invitation.email}",
        data={"invitation_id": invitation.pk},
        now=now,
    )


def invitation_for_token(*, token: str, now: datetime) -> Invitation | None:
    """The open, unexpired invitation this link belongs to, or None."""
    return (
        Invitation.objects.select_related("tenant")
        .filter(
            token_hash=_token_hash(token),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        .first()
    )


def invitation_account(invitation: Invitation) -> User | None:
    """The account the invited address already has, if any. Shown only to whoever holds the link."""
    return get_user_model().objects.filter(email__iexact=invitation.email).order_by("pk").first()


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User, now: datetime) -> Membership:
    """`user`, signed in (or just created from the emailed link), takes up the invitation.

    Only the account whose email is the invited address may accept: the link proves control of that
    mailbox, and nobody else's consent counts for it.
    """
    if (getattr(user, "email", "") or "").lower() != invitation.email:
        raise PermissionDenied("This invitation is for another address.")
    # Claim it once: two clicks (or a click and a revoke) cannot both succeed.
    claimed = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).update(accepted_at=now, accepted_by=user)
    if not claimed:
        raise ValidationError("This invitation no longer works.")
    membership, created = Membership.objects.get_or_create(
        user=user, tenant=invitation.tenant, defaults={"role": invitation.role}
    )
    if created and invitation.role == Role.OWNER:
        membership.owned_properties.set(invitation.properties.all())
    if created:
        _record(
            tenant=invitation.tenant,
            actor=user,
            verb="member.joined",
            message=f"{user} accepted the invitation and joined as {membership.get_role_display()}",
            data={"invitation_id": invitation.pk, "membership_id": membership.pk, "role": membership.role},
            now=now,
        )
    return membership


@transaction.atomic
def invitation_accept_with_password(
    *, invitation: Invitation, password: str, now: datetime
) -> User:
    """Accept from the emailed link by choosing a password, for an address without a usable one.

    An account that already has a password must sign in instead (`invitation_accept`); the link is
    never a way to replace a password someone chose.
    """
    User = get_user_model()
    user = invitation_account(invitation)
    if user is None:
        if User.objects.filter(username__iexact=invitation.email).exists():
            raise ValidationError(
                "An account already uses this address as its login. Ask the admin who invited you."
            )
        user = User(username=invitation.email, email=invitation.email)
    elif user.has_usable_password():
        raise PermissionDenied("Sign in to accept this invitation.")
    user.set_password(password)
    user.save()
    invitation_accept(invitation=invitation, user=user, now=now)
    return user


@transaction.atomic
def member_change_role(
    *, membership: Membership, role: str, actor: User, now: datetime
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
    *, membership: Membership, properties: Iterable[Property], actor: User, now: datetime
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
def member_remove(*, membership: Membership, actor: User, now: datetime) -> None:
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
    *, tenant: Tenant, actor: User, now: datetime, **changes: Any
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
    # Properties that follow a changed default get their future codes re-planned.
    properties_follow_defaults(tenant=tenant, changed=changed, now=now, actor=actor)
    if "max_early_exposure_hours" in changed:
        # A code is never live earlier than the new maximum: codes waiting for their time move to it.
        tenant_codes_retime(tenant_id=tenant.pk, now=now)
    return tenant
