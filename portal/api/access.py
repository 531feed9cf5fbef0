"""Who is calling and for which tenant: resolved once per request from the API key or the session."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import QuerySet
from rest_framework.exceptions import NotAuthenticated, NotFound, ValidationError
from rest_framework.request import Request

from portal.api.authentication import ApiKeyPrincipal
from portal.models import ApiKey, Membership, Property, Role, Tenant

TENANT_HEADER = "X-Lockstep-Tenant"
TENANT_PARAM = "tenant"


@dataclass(frozen=True)
class ApiAccess:
    tenant: Tenant
    role: str
    owner_membership: Membership | None  # set for owners: they see only the properties they own
    user: User | None  # the session user; None for API keys
    api_key: ApiKey | None

    @property
    def can_write(self) -> bool:
        return self.role in (Role.ADMIN, Role.STAFF)

    @property
    def actor(self) -> User | None:
        """Who Activity rows name: the session user, or for a key the admin who created it."""
        if self.user is not None:
            return self.user
        return self.api_key.created_by if self.api_key is not None else None

    def properties(self) -> QuerySet[Property]:
        qs = Property.objects.for_tenant(self.tenant)
        if self.role == Role.OWNER:
            qs = qs.filter(owners=self.owner_membership)
        return qs


def resolve_access(request: Request) -> ApiAccess:
    user = request.user
    if isinstance(user, ApiKeyPrincipal):
        key = user.api_key
        return ApiAccess(
            tenant=key.tenant, role=key.role, owner_membership=key.owner_membership, user=None, api_key=key
        )
    if not user or not user.is_authenticated:
        raise NotAuthenticated("Send an API key: “Authorization: Bearer lsk_…”.")
    memberships = Membership.objects.select_related("tenant").filter(user=user)
    slug = request.headers.get(TENANT_HEADER) or request.query_params.get(TENANT_PARAM)
    if slug and "\x00" in slug:  # PostgreSQL refuses NUL in strings: a 400, not a 500
        raise ValidationError({TENANT_PARAM: "No such tenant."})
    if slug:
        membership = memberships.filter(tenant__slug=slug).first()
        if membership is None:
            raise NotFound("No such tenant.")
    else:
        found = list(memberships[:2])
        if len(found) != 1:
            raise ValidationError(
                {TENANT_PARAM: f"Choose a tenant with the {TENANT_HEADER} header or ?{TENANT_PARAM}=<slug>."}
            )
        membership = found[0]
    return ApiAccess(
        tenant=membership.tenant,
        role=membership.role,
        owner_membership=membership if membership.role == Role.OWNER else None,
        user=user,
        api_key=None,
    )
