"""Settings → API keys (admins): create a key (shown once), list keys with last use, revoke."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.api.keys import api_key_create, api_key_revoke
from portal.http import TenantRequest
from portal.models import ApiKey, Membership, Role, Tenant
from portal.permissions import admin_required
from portal.tenancy import get_for_tenant

NEW_KEY_SESSION = "api_key:new"


class MemberChoiceField(forms.ModelChoiceField):
    """Members listed by their login."""

    def label_from_instance(self, obj: Membership) -> str:
        return obj.user.get_username()


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. “Guesty sync”.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF,
                             help_text="Owner keys are read-only and see one owner's properties, without PINs.")
    owner = MemberChoiceField(queryset=Membership.objects.none(), required=False,
                              help_text="For owner keys: whose properties the key may read.")

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = cast(forms.ModelChoiceField, self.fields["owner"])  # declared above as one
        owner.queryset = (
            Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).select_related("user")
        )


@admin_required
@require_http_methods(["GET", "POST"])
@never_cache  # the page that shows a new key once must not leave it in any cache
def api_key_list(request: TenantRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            api_key, raw_key = api_key_create(
                tenant=request.tenant, name=form.cleaned_data["name"], role=form.cleaned_data["role"],
                created_by=request.user, now=timezone.now(), owner_membership=form.cleaned_data["owner"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else "owner", errors)
        else:
            # Shown once, on the next page load only (post/redirect/get, so a reload cannot repeat it).
            request.session[NEW_KEY_SESSION] = {"id": api_key.pk, "key": raw_key}
            return redirect("api_key_list", tenant_slug=request.tenant.slug)
    new_key = request.session.pop(NEW_KEY_SESSION, None)
    keys = ApiKey.objects.for_tenant(request.tenant).select_related("created_by", "owner_membership__user")
    return render(request, "settings/api_keys.html", {
        "form": form, "keys": keys.order_by("revoked_at", "-created_at"), "new_key": new_key,
    })


@admin_required
@require_POST
def api_key_revoke_view(request: TenantRequest, key_id: int) -> HttpResponse:
    api_key = get_for_tenant(ApiKey, request.tenant, pk=key_id)
    api_key_revoke(api_key=api_key, actor=request.user, now=timezone.now())
    messages.success(request, f"API key “{api_key.name}” revoked. Requests with it now get 401.")
    return redirect("api_key_list", tenant_slug=request.tenant.slug)
