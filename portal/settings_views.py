"""Admin Settings pages: members, invitations and roles, owners' properties, tenant defaults.

Admins only (owners and staff get 403; other tenants 404 from the middleware). Views validate and call
portal/members.py; they hold no rules of their own.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal import members
from portal.forms_settings import InviteForm, MemberForm, TenantDefaultsForm
from portal.http import TenantRequest
from portal.models import Invitation, Membership, Role, Tenant
from portal.permissions import admin_required
from portal.tenancy import get_for_tenant
from providers.models import ProviderAccount


def _members(tenant: Tenant) -> QuerySet[Membership]:
    return (
        Membership.objects.for_tenant(tenant)
        .select_related("user")
        .prefetch_related("owned_properties")
        .order_by("user__username")
    )


@admin_required
def settings_home(request: TenantRequest) -> HttpResponse:
    tenant = request.tenant
    roles = dict(
        Membership.objects.for_tenant(tenant)
        .values_list("role")
        .annotate(n=Count("id"))
        .values_list("role", "n")
    )
    context = {
        "role_counts": [(label, roles.get(value, 0)) for value, label in Role.choices],
        "account_count": ProviderAccount.objects.for_tenant(tenant).count(),
    }
    return render(request, "settings/home.html", context)


@never_cache
@admin_required
def member_list(request: TenantRequest) -> HttpResponse:
    form = InviteForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = members.member_invite(
                tenant=request.tenant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                properties=form.cleaned_data["properties"],
                actor=request.user,
                now=timezone.now(),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            # The same words whether or not the address has an account: this page must not tell.
            messages.success(
                request,
                f"Invitation sent to {invitation.email} as {invitation.get_role_display()}. "
                "They join once they accept it.",
            )
            return redirect("settings_members", tenant_slug=request.tenant.slug)
    status = 400 if request.method == "POST" and form.errors else 200
    context = {
        "members": _members(request.tenant),
        "invitations": members.open_invitations(request.tenant),
        "now": timezone.now(),
        "form": form,
    }
    return render(request, "settings/members.html", context, status=status)


@admin_required
@require_POST
def invitation_revoke(request: TenantRequest, invitation_id: int) -> HttpResponse:
    invitation = get_for_tenant(Invitation.objects.select_related("tenant"), request.tenant, pk=invitation_id)
    members.invitation_revoke(invitation=invitation, actor=request.user, now=timezone.now())
    messages.success(request, f"Revoked the invitation of {invitation.email}.")
    return redirect("settings_members", tenant_slug=request.tenant.slug)


@admin_required
def member_edit(request: TenantRequest, member_id: int) -> HttpResponse:
    membership = get_for_tenant(
        Membership.objects.select_related("user", "tenant"), request.tenant, pk=member_id
    )
    form = MemberForm(request.POST or None, membership=membership)
    if request.method == "POST" and form.is_valid():
        now = timezone.now()
        try:
            members.member_change_role(
                membership=membership, role=form.cleaned_data["role"], actor=request.user, now=now
            )
            if membership.role == Role.OWNER:
                members.member_set_properties(
                    membership=membership,
                    properties=form.cleaned_data["properties"],
                    actor=request.user,
                    now=now,
                )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved {membership.user}.")
            return redirect("settings_members", tenant_slug=request.tenant.slug)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "settings/member_edit.html", {"member": membership, "form": form}, status=status)


@admin_required
def member_remove(request: TenantRequest, member_id: int) -> HttpResponse:
    membership = get_for_tenant(
        Membership.objects.select_related("user", "tenant"), request.tenant, pk=member_id
    )
    error = ""
    if request.method == "POST":
        try:
            members.member_remove(membership=membership, actor=request.user, now=timezone.now())
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Removed {membership.user} from {request.tenant}.")
            if membership.user_id == request.user.pk:
                return redirect("home")
            return redirect("settings_members", tenant_slug=request.tenant.slug)
    status = 400 if error else 200
    return render(
        request, "settings/member_remove.html", {"member": membership, "error": error}, status=status
    )


@admin_required
def tenant_defaults(request: TenantRequest) -> HttpResponse:
    # Bind to a copy: a ModelForm writes cleaned values onto its instance, and the service needs to see
    # the tenant as stored to know what changed.
    form = TenantDefaultsForm(request.POST or None, instance=Tenant.objects.get(pk=request.tenant.pk))
    if request.method == "POST" and form.is_valid():
        try:
            members.tenant_update_defaults(
                tenant=request.tenant, actor=request.user, now=timezone.now(), **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Tenant defaults saved.")
            return redirect("settings_defaults", tenant_slug=request.tenant.slug)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "settings/defaults.html", {"form": form}, status=status)
