"""Provider account pages (admins only): list, add, edit, test connection, import devices, webhook.

Credentials are write-only: no page renders a stored secret; the one exception is a freshly generated
webhook secret, shown once in the response to the POST that made it.
"""

from __future__ import annotations

import secrets
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Max
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from locks import fleet
from portal import provider_accounts as accounts
from portal.forms_accounts import AccountForm, ImportDevicesForm
from portal.forms_properties import VirtualLockForm
from portal.http import TenantRequest
from portal.permissions import admin_required
from portal.tenancy import get_for_tenant
from providers import credentials, oauth
from providers.base import ProviderError
from providers.http import error_words
from providers.models import ProviderAccount, Vendor


def _account(request: TenantRequest, account_uuid: UUID) -> ProviderAccount:
    return get_for_tenant(ProviderAccount, request.tenant, uuid=account_uuid)


def _credential_rows(account: ProviderAccount) -> list[tuple[str, str]]:
    stored = account.credentials or {}
    rows = []
    for spec in credentials.CREDENTIAL_FIELDS.get(account.vendor, ()):
        value = stored.get(spec.name)
        shown = (
            credentials.masked(value) if spec.secret else (str(value) if value not in (None, "") else "not set")
        )
        rows.append((spec.label, shown))
    return rows


@admin_required
def account_list(request: TenantRequest) -> HttpResponse:
    account_rows = ProviderAccount.objects.for_tenant(request.tenant).annotate(lock_count=Count("locks"))
    return render(
        request, "providers/account_list.html", {"accounts": account_rows, "vendors": Vendor.choices}
    )


@never_cache
@admin_required
def account_create(request: TenantRequest) -> HttpResponse:
    vendor = request.POST.get("vendor") or request.GET.get("vendor", "")
    if vendor not in credentials.CREDENTIAL_FIELDS:
        return render(request, "providers/account_vendor.html", {"vendors": Vendor.choices})
    form = AccountForm(request.POST or None, vendor=vendor)
    if request.method == "POST" and form.is_valid():
        try:
            account = accounts.account_create(
                tenant=request.tenant,
                vendor=vendor,
                name=form.cleaned_data["name"],
                credentials=form.credentials(),
                webhook_secret=form.cleaned_data.get("webhook_secret") or "",
                actor=request.user,
                now=timezone.now(),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Added {account}. Test the connection, then import its devices.")
            return redirect(
                "providers:account_detail", tenant_slug=request.tenant.slug, account_uuid=account.uuid
            )
    status = 400 if request.method == "POST" and form.errors else 200
    context = {"form": form, "vendor": vendor, "vendor_label": Vendor(vendor).label}
    return render(request, "providers/account_form.html", context, status=status)


@admin_required
def account_detail(request: TenantRequest, account_uuid: UUID) -> HttpResponse:
    account = _account(request, account_uuid)
    context = {
        "account": account,
        "credential_rows": _credential_rows(account),
        "webhook_url": accounts.webhook_url(account),
        "webhook_secret_state": credentials.masked(account.webhook_secret),
        "vendor_supplies_secret": account.vendor in credentials.VENDOR_SUPPLIED_WEBHOOK_SECRET,
        "public_key_field": credentials.PUBLIC_KEY_SIGNED_WEBHOOKS.get(account.vendor, ""),
        "locks": account.locks.select_related("property").order_by("property__name", "name"),
        "import_form": ImportDevicesForm(tenant=request.tenant),
        "oauth_vendor": account.vendor in oauth.OAUTH_VENDORS,
        "oauth_connected": oauth.stored_token(account.credentials) is not None,
        "last_event_at": account.webhook_events.aggregate(last=Max("received_at"))["last"],
        "history": accounts.account_history(account=account),
        "virtual_form": VirtualLockForm() if account.vendor == Vendor.SIMULATOR else None,
    }
    return render(request, "providers/account_detail.html", context)


@never_cache
@admin_required
def account_edit(request: TenantRequest, account_uuid: UUID) -> HttpResponse:
    account = _account(request, account_uuid)
    form = AccountForm(request.POST or None, vendor=account.vendor, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            accounts.account_update(
                account=account,
                name=form.cleaned_data["name"],
                credentials=form.credentials(),
                webhook_secret=form.cleaned_data.get("webhook_secret") or "",
                actor=request.user,
                now=timezone.now(),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved {account}.")
            return redirect(
                "providers:account_detail", tenant_slug=request.tenant.slug, account_uuid=account.uuid
            )
    status = 400 if request.method == "POST" and form.errors else 200
    context = {
        "form": form,
        "account": account,
        "vendor": account.vendor,
        "vendor_label": account.get_vendor_display(),
    }
    return render(request, "providers/account_form.html", context, status=status)


@admin_required
@require_POST
def account_test(request: TenantRequest, account_uuid: UUID) -> HttpResponse:
    account = _account(request, account_uuid)
    result = fleet.account_check_connection(account=account, actor=request.user, now=timezone.now())
    if result.ok:
        messages.success(request, f"{account.name}: the vendor accepted the credentials.")
    else:
        messages.error(request, f"{account.name}: {account.get_status_display()}. {result.detail}")
    return redirect("providers:account_detail", tenant_slug=request.tenant.slug, account_uuid=account.uuid)


@admin_required
def account_import(request: TenantRequest, account_uuid: UUID) -> HttpResponse:
    account = _account(request, account_uuid)
    form = ImportDevicesForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            result = fleet.account_import_devices(
                account=account,
                property=form.cleaned_data["property"],
                actor=request.user,
                now=timezone.now(),
            )
        except ProviderError as exc:
            form.add_error(None, f"The vendor did not list the devices. {error_words(exc)}")
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"Imported {len(result.created)} new lock(s); refreshed {len(result.updated)} known lock(s).",
            )
            return redirect(
                "providers:account_detail", tenant_slug=request.tenant.slug, account_uuid=account.uuid
            )
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "providers/account_import.html", {"account": account, "form": form}, status=status)


@never_cache
@admin_required
@require_POST
def account_webhook_secret(request: TenantRequest, account_uuid: UUID) -> HttpResponse:
    account = _account(request, account_uuid)
    try:
        secret = accounts.account_generate_webhook_secret(
            account=account, actor=request.user, now=timezone.now()
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(
            "providers:account_detail", tenant_slug=request.tenant.slug, account_uuid=account.uuid
        )
    context = {"account": account, "secret": secret, "webhook_url": accounts.webhook_url(account)}
    return render(request, "providers/webhook_secret.html", context)


@admin_required
@require_POST
def account_virtual_lock(request: TenantRequest, account_uuid: UUID) -> HttpResponse:
    """A simulator account grows a virtual lock of a vendor profile, so a trial needs no hardware. It is a
    device at the (simulated) vendor: "Import devices" brings it in, unassigned, like any other."""
    from providers.simulator import simulator_device_create

    account = _account(request, account_uuid)
    if account.vendor != Vendor.SIMULATOR:
        raise Http404("Only simulator accounts have virtual locks.")
    form = VirtualLockForm(request.POST)
    if form.is_valid():
        device = simulator_device_create(
            account=account, device_id=f"sim-{secrets.token_hex(4)}", profile=form.cleaned_data["profile"],
            name=form.cleaned_data["name"].strip(),
        )
        messages.success(request, f"Virtual lock “{device.name}” added. Import devices to start using it.")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
    return redirect("providers:account_detail", tenant_slug=request.tenant.slug, account_uuid=account.uuid)
