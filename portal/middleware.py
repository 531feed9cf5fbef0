"""Resolves the tenant from /t/<slug>/… and the user's membership in it, once per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse

from portal.http import PortalRequest
from portal.models import Membership


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PortalRequest) -> HttpResponse:
        request.tenant = None
        request.membership = None
        return self.get_response(request)

    def process_view(
        self, request: PortalRequest, view_func: Callable, view_args: tuple, view_kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        slug = view_kwargs.pop("tenant_slug", None)
        if slug is None:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = (
            Membership.objects.select_related("tenant").filter(user=request.user, tenant__slug=slug).first()
        )
        if membership is None:
            # Same answer for a tenant that does not exist and one you are not a member of.
            raise Http404("No such tenant.")
        request.tenant = membership.tenant
        request.membership = membership
        return None
