"""People's codes (cleaner, maintenance, owner, staff): create on a lock or on every lock of a property,
edit, remove. Staff and admins only (owners 403); another tenant's ids are 404. The engine's
locks.people does the work; these pages parse input and show its answer.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from locks import people
from locks.models import PEOPLE_PURPOSES, SHOWN_CODE_STATUSES, AccessCode, CodePurpose, Lock
from portal.forms import add_service_errors
from portal.forms_people import PeopleCodeForm
from portal.http import TenantRequest
from portal.models import Property
from portal.permissions import editor_required, visible_properties
from portal.tenancy import get_for_tenant

FORM_FIELDS = {"purpose", "holder_name", "pin", "starts_at", "ends_at"}


def people_codes(*, lock: Lock | None = None, prop: Property | None = None) -> QuerySet[AccessCode]:
    """The people's codes still of interest (not removed) on a lock or on a property's locks."""
    # Turnover codes are listed too (staff tell the cleaner their PIN) but follow the stays, not a form.
    shown = [*PEOPLE_PURPOSES, CodePurpose.TURNOVER]
    codes = AccessCode.objects.filter(booking__isnull=True, purpose__in=shown,
                                      status__in=SHOWN_CODE_STATUSES).select_related("lock")
    codes = codes.filter(lock=lock) if lock is not None else codes.filter(lock__property=prop)
    return codes.order_by("purpose", "holder_name", "starts_at", "lock__name", "id")


def _lock(request: TenantRequest, lock_id: int) -> Lock:
    return get_for_tenant(Lock.objects.filter(property__in=visible_properties(request)).select_related(
        "property", "tenant"), request.tenant, pk=lock_id)


def _property(request: TenantRequest, property_id: int) -> Property:
    return get_for_tenant(visible_properties(request).select_related("tenant"), request.tenant, pk=property_id)


def _code(request: TenantRequest, code_id: int) -> AccessCode:
    return get_for_tenant(
        AccessCode.objects.filter(lock__property__in=visible_properties(request), booking__isnull=True,
                                  purpose__in=PEOPLE_PURPOSES).select_related("lock__property", "tenant"),
        request.tenant, pk=code_id,
    )


def _back(lock: Lock | None, prop: Property | None, request: TenantRequest) -> HttpResponse:
    if lock is not None:
        return redirect("locks:lock_detail", tenant_slug=request.tenant.slug, lock_id=lock.pk)
    assert prop is not None
    return redirect("property_detail", tenant_slug=request.tenant.slug, property_id=prop.pk)


def _create(request: TenantRequest, *, lock: Lock | None, prop: Property) -> HttpResponse:
    form = PeopleCodeForm(request.POST or None, tz_name=prop.timezone)
    if request.method == "POST" and form.is_valid():
        try:
            codes = people.people_code_create(
                purpose=form.cleaned_data["purpose"], lock=lock, property=None if lock else prop,
                actor=request.user, now=timezone.now(), **form.service_kwargs(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc, fields=FORM_FIELDS)
        else:
            doors = codes[0].lock.name if len(codes) == 1 else f"{len(codes)} locks"
            messages.success(request, f"Code for {codes[0].holder_name} on {doors} is on its way.")
            return _back(lock, prop, request)
    status = 400 if request.method == "POST" and form.errors else 200
    context = {"form": form, "lock": lock, "property": prop, "code": None}
    return render(request, "locks/people_code_form.html", context, status=status)


@never_cache
@editor_required
@require_http_methods(["GET", "POST"])
def people_code_new_on_lock(request: TenantRequest, lock_id: int) -> HttpResponse:
    lock = _lock(request, lock_id)
    assert lock.property is not None  # placed: _lock only finds locks of visible properties
    return _create(request, lock=lock, prop=lock.property)


@never_cache
@editor_required
@require_http_methods(["GET", "POST"])
def people_code_new_on_property(request: TenantRequest, property_id: int) -> HttpResponse:
    return _create(request, lock=None, prop=_property(request, property_id))


@never_cache
@editor_required
@require_http_methods(["GET", "POST"])
def people_code_edit(request: TenantRequest, person_code_id: int) -> HttpResponse:
    code = _code(request, person_code_id)
    prop = code.lock.property
    assert prop is not None
    form = PeopleCodeForm(request.POST or None, tz_name=prop.timezone, code=code)
    if request.method == "POST" and form.is_valid():
        try:
            people.people_code_update(code=code, actor=request.user, now=timezone.now(), **form.service_kwargs())
        except ValidationError as exc:
            add_service_errors(form, exc, fields=FORM_FIELDS)
        else:
            messages.success(request, f"Code for {form.cleaned_data['holder_name']} changed; the lock follows.")
            return _back(code.lock, None, request)
    status = 400 if request.method == "POST" and form.errors else 200
    context = {"form": form, "lock": code.lock, "property": prop, "code": code}
    return render(request, "locks/people_code_form.html", context, status=status)


@editor_required
@require_POST
def people_code_remove(request: TenantRequest, person_code_id: int) -> HttpResponse:
    code = _code(request, person_code_id)
    try:
        people.people_code_remove(code=code, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Code for {code.holder_name or code.name} on {code.lock.name} is being removed.")
    target = request.POST.get("back")
    if target == "property" and code.lock.property is not None:
        return _back(None, code.lock.property, request)
    return _back(code.lock, None, request)
