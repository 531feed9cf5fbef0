"""Row-level tenancy: every tenant-owned model uses TenantQuerySet; views fetch through these helpers.

Another tenant's id gives the same 404 as a missing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from portal.models import Tenant

M = TypeVar("M", bound=models.Model)


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> TenantQuerySet:
        return self.filter(tenant=tenant)


TenantManager = models.Manager.from_queryset(TenantQuerySet)


@overload
def get_for_tenant(queryset_or_model: type[M], tenant: Tenant, **lookup: Any) -> M: ...
@overload
def get_for_tenant(queryset_or_model: models.QuerySet[M], tenant: Tenant, **lookup: Any) -> M: ...
def get_for_tenant(queryset_or_model: type[M] | models.QuerySet[M], tenant: Tenant, **lookup: Any) -> M:
    """Fetch one row of `tenant` or raise Http404, whether it is missing or someone else's."""
    # Every tenant-owned model has one manager, `objects` (TenantManager), so it is the default manager.
    qs = (
        queryset_or_model
        if isinstance(queryset_or_model, models.QuerySet)
        else queryset_or_model._default_manager.all()
    )
    try:
        return qs.filter(tenant=tenant).get(**lookup)
    except (ObjectDoesNotExist, ValueError, TypeError) as exc:  # the model's DoesNotExist subclasses it
        raise Http404(f"No {qs.model._meta.verbose_name} matches the given query.") from exc
