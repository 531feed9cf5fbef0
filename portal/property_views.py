"""Property pages: create, edit, archive; booking feeds (add, sync now, remove); booking conflicts.

Admins do everything; staff may change check-in/out times and buffers and sync feeds; owners read only
(403); another tenant's ids are 404. Views validate and call portal/properties.py and portal/feeds.py.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal import properties
from portal.conflicts import conflict_dismiss
from portal.feeds import feed_import
from portal.forms import add_service_errors
from portal.forms_properties import FeedForm, PropertyForm
from portal.http import TenantRequest
from portal.models import BookingConflict, BookingFeed, Property, Role
from portal.permissions import admin_required, editor_required, visible_properties
from portal.tenancy import get_for_tenant


def _property(request: TenantRequest, property_id: int) -> Property:
    return get_for_tenant(visible_properties(request).select_related("tenant"), request.tenant, pk=property_id)


def _to_property(request: TenantRequest, prop: Property) -> HttpResponse:
    return redirect("property_detail", tenant_slug=request.tenant.slug, property_id=prop.pk)


def _allowed(request: TenantRequest) -> tuple[str, ...]:
    return properties.PROPERTY_FIELDS if request.membership.role == Role.ADMIN else properties.STAFF_FIELDS


@admin_required
@require_http_methods(["GET", "POST"])
def property_create(request: TenantRequest) -> HttpResponse:
    tenant = request.tenant
    initial = {"timezone": tenant.timezone, "checkin_time": "15:00", "checkout_time": "11:00"}
    form = PropertyForm(request.POST or None, tenant=tenant, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            prop = properties.property_create(tenant=tenant, actor=request.user, now=timezone.now(),
                                              **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc, fields=set(form.fields))
        else:
            messages.success(request, f"{prop.name} created. Add its booking feeds and assign its locks.")
            return _to_property(request, prop)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "portal/property_form.html", {"form": form, "property": None}, status=status)


@editor_required
@require_http_methods(["GET", "POST"])
def property_edit(request: TenantRequest, property_id: int) -> HttpResponse:
    prop = _property(request, property_id)
    if prop.archived_at is not None:
        messages.error(request, "An archived property cannot be changed.")
        return _to_property(request, prop)
    form = PropertyForm(request.POST or None, tenant=request.tenant, allowed=_allowed(request),
                        initial=PropertyForm.initial_for(prop))
    if request.method == "POST" and form.is_valid():
        try:
            properties.property_update(prop=prop, actor=request.user, now=timezone.now(), allowed=_allowed(request),
                                       **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc, fields=set(form.fields))
        else:
            messages.success(request, f"{prop.name} saved; future codes follow the new settings.")
            return _to_property(request, prop)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "portal/property_form.html", {"form": form, "property": prop}, status=status)


@admin_required
@require_http_methods(["GET", "POST"])
def property_archive(request: TenantRequest, property_id: int) -> HttpResponse:
    prop = _property(request, property_id)
    if request.method == "POST":
        properties.property_archive(prop=prop, actor=request.user, now=timezone.now())
        messages.success(request, f"{prop.name} archived; its future codes are being removed.")
        return _to_property(request, prop)
    upcoming = prop.bookings.filter(status="confirmed", check_out__gt=timezone.now()).count()
    return render(request, "portal/property_archive.html", {"property": prop, "upcoming": upcoming})


@never_cache
@admin_required
@require_http_methods(["GET", "POST"])
def feed_create(request: TenantRequest, property_id: int) -> HttpResponse:
    prop = _property(request, property_id)
    form = FeedForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            properties.feed_add(prop=prop, label=form.cleaned_data["label"], url=form.cleaned_data["url"],
                                actor=request.user, now=timezone.now())
        except ValidationError as exc:
            add_service_errors(form, exc, fields=set(form.fields))
        else:
            messages.success(request, "Feed added; press “Sync now” or wait for the next sync.")
            return _to_property(request, prop)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "portal/feed_form.html", {"form": form, "property": prop}, status=status)


def _feed(request: TenantRequest, property_id: int, feed_id: int) -> BookingFeed:
    prop = _property(request, property_id)
    return get_for_tenant(BookingFeed.objects.filter(property=prop).select_related("property__tenant"),
                          request.tenant, pk=feed_id)


@editor_required
@require_POST
def feed_sync(request: TenantRequest, property_id: int, feed_id: int) -> HttpResponse:
    feed = _feed(request, property_id, feed_id)
    result = feed_import(feed=feed, now=timezone.now())
    if result.error:
        messages.error(request, f"“{feed.label}”: {result.error}")
    else:
        messages.success(
            request, f"“{feed.label}” synced: {len(result.created)} new, {len(result.moved)} moved, "
            f"{len(result.cancelled)} cancelled, {len(result.conflicts)} in conflict.",
        )
    return _to_property(request, feed.property)


@admin_required
@require_POST
def feed_delete(request: TenantRequest, property_id: int, feed_id: int) -> HttpResponse:
    feed = _feed(request, property_id, feed_id)
    properties.feed_remove(feed=feed, actor=request.user, now=timezone.now())
    messages.success(request, f"Feed “{feed.label}” removed; its bookings stay as they are.")
    return _to_property(request, feed.property)


@editor_required
@require_POST
def conflict_dismiss_view(request: TenantRequest, property_id: int, conflict_id: int) -> HttpResponse:
    prop = _property(request, property_id)
    conflict = get_for_tenant(BookingConflict.objects.filter(property=prop).select_related("property"),
                              request.tenant, pk=conflict_id)
    conflict_dismiss(conflict=conflict, actor=request.user, now=timezone.now())
    messages.success(request, f"Conflict of {conflict.guest_name} dismissed.")
    return _to_property(request, prop)
