"""Row-level tenancy: every tenant-owned model uses TenantQuerySet; views fetch through these helpers.

Another tenant's id gives the same 404 as a missing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from portal.models import Tenant

M = TypeVar("M", bound=models.Model)


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> TenantQuerySet:
        return self.filter(tenant=tenant)


TenantManager = models.Manager.from_queryset(TenantQuerySet)


def get_for_tenant(queryset_or_model: type[M] | models.QuerySet, tenant: Tenant, **lookup: Any) -> M:
    """Fetch one row of `tenant` or raise Http404, whether it is missing or someone else's."""
    qs = queryset_or_model if isinstance(queryset_or_model, models.QuerySet) else queryset_or_model.objects.all()
    try:
        return qs.filter(tenant=tenant).get(**lookup)
    except (qs.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"No {qs.model._meta.verbose_name} matches the given query.") from exc
