"""Role checks for tenant views. Tenancy itself is the middleware's job."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse

from portal.http import TenantRequest
from portal.models import Property, Role


def require_role(*roles: str) -> Callable:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: TenantRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.membership is None or request.membership.role not in roles:
                raise PermissionDenied("Your role in this tenant does not allow this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


admin_required = require_role(Role.ADMIN)
editor_required = require_role(Role.ADMIN, Role.STAFF)


def visible_properties(request: TenantRequest) -> QuerySet[Property]:
    """Staff and admins see every property of the tenant; owners only those they own."""
    qs = Property.objects.for_tenant(request.tenant)
    if request.membership.role == Role.OWNER:
        qs = qs.filter(owners=request.membership)
    return qs


def listed_properties(request: TenantRequest) -> QuerySet[Property]:
    """What lists and pickers offer: the visible properties that are not archived. (Archived ones are
    still visible: their pages render.)"""
    return visible_properties(request).filter(archived_at__isnull=True)
