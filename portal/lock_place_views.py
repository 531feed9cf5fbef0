"""Placing locks (admins): the unassigned devices list, assign / move / rename a lock, stop managing it.

Another tenant's lock is a 404; staff and owners get 403. Views validate and call portal/lock_placement.py.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from locks.models import SHOWN_CODE_STATUSES, Lock
from portal.forms import add_service_errors
from portal.forms_properties import LockPlaceForm, LockReleaseForm
from portal.http import TenantRequest
from portal.lock_placement import lock_place, lock_release
from portal.permissions import admin_required, listed_properties
from portal.tenancy import get_for_tenant


def _managed_locks(request: TenantRequest) -> QuerySet[Lock]:
    return Lock.objects.for_tenant(request.tenant).filter(managed=True)


@admin_required
def lock_unassigned(request: TenantRequest) -> HttpResponse:
    locks = _managed_locks(request).filter(property__isnull=True).select_related("provider_account")
    forms = [(lock, LockPlaceForm(properties=listed_properties(request), initial={"name": lock.name},
                                  prefix=f"lock{lock.pk}")) for lock in locks.order_by("name", "pk")]
    return render(request, "locks/lock_unassigned.html", {"rows": forms})


@admin_required
@require_http_methods(["GET", "POST"])
def lock_place_view(request: TenantRequest, lock_id: int) -> HttpResponse:
    lock = get_for_tenant(_managed_locks(request).select_related("property"), request.tenant, pk=lock_id)
    prefix = request.POST.get("prefix") or None
    form = LockPlaceForm(request.POST or None, properties=listed_properties(request), prefix=prefix,
                         initial={"property": lock.property, "name": lock.name})
    if request.method == "POST" and form.is_valid():
        try:
            lock = lock_place(lock=lock, property=form.cleaned_data["property"], name=form.cleaned_data["name"],
                              actor=request.user, now=timezone.now())
        except ValidationError as exc:
            add_service_errors(form, exc, fields=set(form.fields))
        else:
            where = lock.property.name if lock.property else "unassigned"
            messages.success(request, f"{lock.name} is now at {where}; its codes follow.")
            return redirect("locks:lock_detail", tenant_slug=request.tenant.slug, lock_id=lock.pk)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "locks/lock_place.html", {"lock": lock, "form": form}, status=status)


@admin_required
@require_http_methods(["GET", "POST"])
def lock_release_view(request: TenantRequest, lock_id: int) -> HttpResponse:
    lock = get_for_tenant(_managed_locks(request).select_related("property"), request.tenant, pk=lock_id)
    form = LockReleaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        keep = form.cleaned_data["codes"] == "keep"
        lock_release(lock=lock, keep_codes=keep, actor=request.user, now=timezone.now())
        messages.success(request, f"Lockstep no longer manages {lock.name}."
                         + (" Its codes were left on the lock." if keep else " Its codes are being removed."))
        return redirect("locks:lock_list", tenant_slug=request.tenant.slug)
    live = lock.access_codes.filter(status__in=SHOWN_CODE_STATUSES).count()
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "locks/lock_release.html", {"lock": lock, "form": form, "live": live}, status=status)
