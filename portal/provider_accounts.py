"""Provider account services: create/edit with write-only credentials and the webhook secret. (Testing
the connection and importing devices are the fleet's: `locks.fleet`.)

Secrets never leave this module in readable form except through the adapter (which needs them) and
`account_generate_webhook_secret`, whose return value is shown to the admin exactly once. Activity rows
name the credential *fields* that changed, never their values.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from locks.activity import activity_record
from portal.models import Tenant
from providers.credentials import (
    CREDENTIAL_FIELDS,
    clean_credentials,
    clean_webhook_secret,
    webhook_secret_generated_here,
)
from providers.models import AccountStatus, ProviderAccount


def webhook_url(account: ProviderAccount) -> str:
    """Where the vendor must POST events for this account (DESIGN §8)."""
    path = reverse("webhooks:receive", kwargs={"vendor": account.vendor, "account_uuid": account.uuid})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def _record(
    *,
    account: ProviderAccount,
    actor: User | None,
    verb: str,
    message: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    activity_record(tenant_id=account.tenant_id, actor=actor, verb=verb, message=message, now=now,
                    data={"account_id": account.pk, **(data or {})})


@transaction.atomic
def account_create(
    *,
    tenant: Tenant,
    vendor: str,
    name: str,
    credentials: dict[str, Any],
    actor: User,
    now: datetime,
    webhook_secret: str = "",
) -> ProviderAccount:
    if vendor not in CREDENTIAL_FIELDS:
        raise ValidationError({"vendor": "Choose a supported vendor."})
    merged, changed = clean_credentials(vendor, credentials, {})
    account = ProviderAccount.objects.create(
        tenant=tenant,
        vendor=vendor,
        name=name.strip(),
        credentials=merged,
        webhook_secret=clean_webhook_secret(vendor, webhook_secret),
    )
    _record(
        account=account,
        actor=actor,
        verb="provider_account.created",
        message=f"{actor} added the {account.get_vendor_display()} account “{account.name}”",
        data={"fields_set": sorted(changed), "webhook_secret_set": bool(account.webhook_secret)},
        now=now,
    )
    return account


@transaction.atomic
def account_update(
    *,
    account: ProviderAccount,
    name: str,
    credentials: dict[str, Any],
    actor: User,
    now: datetime,
    webhook_secret: str = "",
) -> ProviderAccount:
    """Blank credential fields (and a blank webhook secret) keep what is stored."""
    merged, changed = clean_credentials(account.vendor, credentials, account.credentials or {})
    new_secret = clean_webhook_secret(account.vendor, webhook_secret)
    update_fields: list[str] = []
    name = name.strip()
    if name != account.name:
        account.name = name
        update_fields.append("name")
    if changed:
        account.credentials = merged
        # New credentials have not been tried yet.
        account.status, account.status_detail = AccountStatus.UNKNOWN, ""
        update_fields += ["credentials", "status", "status_detail"]
    if new_secret and new_secret != account.webhook_secret:
        account.webhook_secret = new_secret
        update_fields.append("webhook_secret")
    if not update_fields:
        return account
    account.save(update_fields=update_fields)
    _record(
        account=account,
        actor=actor,
        verb="provider_account.updated",
        message=f"{actor} changed the {account.get_vendor_display()} account “{account.name}”",
        data={
            "fields_changed": sorted(changed),
            "name_changed": "name" in update_fields,
            "webhook_secret_changed": "webhook_secret" in update_fields,
        },
        now=now,
    )
    return account


@transaction.atomic
def account_generate_webhook_secret(
    *, account: ProviderAccount, actor: User, now: datetime
) -> str:
    """Replace the webhook secret with a fresh random one and return it (to be shown once)."""
    if not webhook_secret_generated_here(account.vendor):
        raise ValidationError(
            f"{account.get_vendor_display()} webhooks are not signed with a secret made here."
        )
    secret = "lsw_" + secrets.token_urlsafe(32)
    account.webhook_secret = secret
    account.save(update_fields=["webhook_secret"])
    _record(
        account=account,
        actor=actor,
        verb="provider_account.webhook_secret_generated",
        message=f"{actor} generated a new webhook secret for “{account.name}”",
        now=now,
    )
    return secret
