"""The one tenant-scoping mixin every API viewset inherits (after PostHog's routing mixin).

``get_queryset`` is final: it always filters by the caller's tenant and, for owners, by the properties
they own. Subclasses say what to list with ``queryset`` / ``dangerously_get_queryset`` and how rows reach
a property with ``property_path``; a subclass that defines ``get_queryset`` fails at import time, so the
scope cannot be dropped by accident.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from rest_framework import generics, permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.views import APIView

from portal.api.access import ApiAccess, resolve_access
from portal.api.authentication import ApiKeyAuthentication
from portal.api.errors import api_exception_handler
from portal.api.schema import TenantApiAutoSchema
from portal.models import Role


class ReadOnlyForOwners(permissions.BasePermission):
    message = "This key or role is read-only."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return isinstance(view, TenantScopedViewSetMixin) and view.access.can_write


class TenantScopedViewSetMixin(generics.GenericAPIView):
    """Listed first in a viewset's bases; its GenericAPIView base sits below the viewset's in the MRO."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [ReadOnlyForOwners]
    schema = TenantApiAutoSchema()
    # The lookup from a row to its Property ("property", "lock__property", "pk" for Property itself).
    property_path: ClassVar[str]
    access: ApiAccess

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must not override get_queryset (it scopes by tenant); "
                "override dangerously_get_queryset instead."
            )
        if not getattr(cls, "property_path", None):
            raise TypeError(f"{cls.__name__} must say how its rows reach a property (property_path).")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)
        self.access = resolve_access(request)
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self) -> Any:
        return api_exception_handler

    def dangerously_get_queryset(self) -> QuerySet:
        """Every row of the model, across tenants. Only get_queryset may call this."""
        assert self.queryset is not None, f"{type(self).__name__} must set queryset"
        return self.queryset.all()

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular introspection: no request
            return self.dangerously_get_queryset().none()
        qs = self.dangerously_get_queryset().filter(tenant=self.access.tenant)
        if self.access.role == Role.OWNER:
            qs = qs.filter(**{f"{self.property_path}__in": self.access.properties()})
        return qs

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["access"] = getattr(self, "access", None)
        return context
