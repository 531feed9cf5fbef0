"""What our middleware adds to a request, as types: page views annotate ``request`` with these.

Types only: the attributes are set at run time by TenantMiddleware (``tenant``, ``membership``),
AdminIdleTimeoutMiddleware (``idle_seconds``) and django-htmx's HtmxMiddleware (``htmx``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails

    from portal.models import Membership, Tenant


class PortalRequest(HttpRequest):
    """Any request after our middleware; outside /t/<slug>/ there is no tenant or membership."""

    tenant: Tenant | None
    membership: Membership | None
    idle_seconds: float | None
    htmx: HtmxDetails


class TenantRequest(PortalRequest):
    """A request inside /t/<slug>/…: TenantMiddleware has resolved the tenant and the signed-in user's
    membership in it (anyone else got a login redirect or a 404 before the view ran)."""

    user: User
    tenant: Tenant
    membership: Membership


class AuthenticatedRequest(PortalRequest):
    """A request behind @login_required outside a tenant (home, invitations)."""

    user: User
