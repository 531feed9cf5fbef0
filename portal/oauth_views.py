"""OAuth connect for provider accounts (DESIGN §5, §9): "Connect"/"Reconnect" and the one callback.

Connect is a GET link (the site's CSP has form-action 'self'; a redirect to the vendor is a navigation,
not a form): it makes a fresh `state` (and a PKCE verifier where the vendor takes one), keeps both in the
admin's session bound to the tenant and account, and sends the browser to the vendor's consent page.
The vendor sends it back to the one fixed callback, `/oauth/callback/` (vendors register one redirect
URI, so it names no tenant or account). A callback whose state is missing, unknown to this session or
stale is a 400 and saves nothing; the state is single use. Tokens never reach a page or a message.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from locks import tokens
from portal.models import Membership, Role, Tenant
from portal.permissions import admin_required
from portal.tenancy import get_for_tenant
from providers import oauth
from providers.base import ProviderError
from providers.http import error_words
from providers.models import ProviderAccount

logger = logging.getLogger(__name__)

SESSION_KEY = "oauth_pending"
STATE_TTL_SECONDS = 15 * 60
MAX_PENDING = 5  # connects started in this session and not finished


def _tenant(request: HttpRequest) -> Tenant:
    return cast(Any, request).tenant  # set by TenantMiddleware on /t/<slug>/ pages


def redirect_uri() -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('oauth_callback')}"


def _detail(account: ProviderAccount) -> HttpResponse:
    return redirect("providers:account_detail", tenant_slug=account.tenant.slug, account_uuid=account.uuid)


@never_cache
@admin_required
@require_GET
def account_connect(request: HttpRequest, account_uuid: UUID) -> HttpResponse:
    account = get_for_tenant(ProviderAccount, _tenant(request), uuid=account_uuid)
    if account.vendor not in oauth.OAUTH_VENDORS:
        messages.error(request, f"{account.get_vendor_display()} accounts use an API key, not a connection.")
        return _detail(account)
    try:
        start = oauth.authorization_start(
            vendor=account.vendor, client=oauth.ClientCredentials.of(account.credentials), redirect_uri=redirect_uri()
        )
    except ProviderError:
        messages.error(request, "Enter the OAuth client id (and secret) of your app registration first.")
        return _detail(account)
    now = time.time()
    pending: dict[str, dict[str, Any]] = {
        state: entry for state, entry in request.session.get(SESSION_KEY, {}).items()
        if now - float(entry.get("at", 0)) < STATE_TTL_SECONDS
    }
    for stale in sorted(pending, key=lambda s: pending[s]["at"])[: max(0, len(pending) - MAX_PENDING + 1)]:
        pending.pop(stale)
    pending[start.state] = {
        "tenant_id": _tenant(request).pk, "account_uuid": str(account.uuid), "user_id": request.user.pk,
        "verifier": start.code_verifier, "at": now,
    }
    request.session[SESSION_KEY] = pending
    return redirect(start.url)


def _refuse(request: HttpRequest, why: str) -> HttpResponse:
    return render(request, "providers/oauth_refused.html", {"why": why}, status=400)


@never_cache
@require_GET
@login_required
def oauth_callback(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    pending: dict[str, dict[str, Any]] = dict(request.session.get(SESSION_KEY, {}))
    entry = pending.pop(state, None) if state else None
    request.session[SESSION_KEY] = pending  # single use, whatever happens next
    if entry is None or entry.get("user_id") != request.user.pk or time.time() - float(entry["at"]) > STATE_TTL_SECONDS:
        return _refuse(request, "This sign-in answer does not belong to a connection you started here, or it is too old.")
    membership = Membership.objects.select_related("tenant").filter(
        user=request.user, tenant_id=entry["tenant_id"], role=Role.ADMIN
    ).first()
    if membership is None:
        raise Http404("No such account.")
    account = get_for_tenant(ProviderAccount, membership.tenant, uuid=entry["account_uuid"])
    code = request.GET.get("code", "")
    if request.GET.get("error") or not code:
        return _refuse(request, "The vendor did not authorize Lockstep; nothing was changed.")
    try:
        tokens.account_connect(
            account=account, code=code, code_verifier=str(entry.get("verifier") or ""),
            redirect_uri=redirect_uri(), actor=request.user, now=timezone.now(),
        )
    except ProviderError as exc:
        logger.warning("account %s: OAuth code exchange failed: %s", account.pk, exc.reason)
        messages.error(request, f"{account.name}: the vendor did not complete the connection. {error_words(exc)}")
        return _detail(account)
    messages.success(request, f"{account.name} is connected.")
    return _detail(account)
