"""Provider account services: create/edit with write-only credentials, test the connection, import
devices as locks, and the webhook secret.

Secrets never leave this module in readable form except through the adapter (which needs them) and
`account_generate_webhook_secret`, whose return value is shown to the admin exactly once. Activity rows
name the credential *fields* that changed, never their values.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from locks.models import Lock
from locks.services import activity_record
from portal.models import Property, Tenant
from providers.base import ProviderError, Reason
from providers.http import error_words
from providers.models import AccountStatus, ProviderAccount, Vendor
from providers.registry import get_provider

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    required: bool = True
    secret: bool = True  # write-only: never rendered back, blank keeps the stored value
    multiline: bool = False
    help_text: str = ""


BASE_URL = CredentialField(
    "base_url",
    "API base URL",
    required=False,
    secret=False,
    help_text="Leave blank for the vendor's default.",
)

# What each vendor needs (VENDORS.md). The form is built from this table.
CREDENTIAL_FIELDS: dict[str, tuple[CredentialField, ...]] = {
    Vendor.SEAM: (
        CredentialField("api_key", "API key", help_text="A Seam workspace API key (seam_…)."),
        BASE_URL,
    ),
    Vendor.SMARTTHINGS: (
        CredentialField("token", "Access token"),
        CredentialField(
            "public_key",
            "Webhook public key",
            required=False,
            multiline=True,
            help_text="The SmartApp's public key (PEM) used to verify signed webhook requests.",
        ),
        BASE_URL,
    ),
    Vendor.NUKI: (CredentialField("api_token", "API token", help_text="A Nuki Web API token."), BASE_URL),
    Vendor.SCHLAGE: (
        CredentialField("api_key", "API key", help_text="The Allegion subscription key."),
        CredentialField(
            "token",
            "Access token",
            required=False,
            help_text="Only if your integration issues OAuth bearer tokens.",
        ),
        CredentialField("client_secret", "Client secret", required=False),
        CredentialField(
            "webhook_public_key",
            "Webhook public key",
            required=False,
            multiline=True,
            help_text="Schlage's published RSA public key (PEM) for WebHook-Signature.",
        ),
        BASE_URL,
    ),
    Vendor.SIMULATOR: (
        CredentialField(
            "seed", "Random seed", required=False, secret=False, help_text="Makes simulated runs repeatable."
        ),
    ),
}

# Vendors that hand us the webhook signing secret (pasted by the admin), with the prefix it starts with.
VENDOR_SUPPLIED_WEBHOOK_SECRET: dict[str, str] = {
    Vendor.SEAM: "whsec_",  # Svix: /webhooks/create returns the whsec_ secret
    Vendor.NUKI: "",  # decentral webhook registration returns the secret
}
# Vendors that sign webhooks with their private key; we verify with the public key in the credentials.
PUBLIC_KEY_SIGNED_WEBHOOKS: dict[str, str] = {
    Vendor.SMARTTHINGS: "public_key",
    Vendor.SCHLAGE: "webhook_public_key",
}
# Everything else (the simulator) signs with a secret we generate: `account_generate_webhook_secret`.


def webhook_secret_generated_here(vendor: str) -> bool:
    return vendor not in VENDOR_SUPPLIED_WEBHOOK_SECRET and vendor not in PUBLIC_KEY_SIGNED_WEBHOOKS


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    status: str
    detail: str


@dataclass(frozen=True)
class ImportResult:
    created: list[Lock]
    updated: list[Lock]


def webhook_url(account: ProviderAccount) -> str:
    """Where the vendor must POST events for this account (DESIGN §8)."""
    path = reverse("webhooks:receive", kwargs={"vendor": account.vendor, "account_uuid": account.uuid})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def masked(value: Any) -> str:
    """How a stored secret is shown: that it is set, never any of it."""
    return "•••• set (last 4 hidden)" if value not in (None, "") else "not set"


def _record(
    *,
    account: ProviderAccount,
    actor: AbstractBaseUser | None,
    verb: str,
    message: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    activity_record(tenant_id=account.tenant_id, actor=actor, verb=verb, message=message, now=now,
                    data={"account_id": account.pk, **(data or {})})


def _clean_credentials(
    vendor: str, submitted: dict[str, Any], stored: dict[str, Any]
) -> tuple[dict, list[str]]:
    """Merge submitted values over stored ones: a blank secret keeps the stored value."""
    fields = CREDENTIAL_FIELDS[vendor]
    # Keys the form does not show (set by the seed or an operator, e.g. simulator knobs) are kept as they are.
    merged: dict[str, Any] = {k: v for k, v in stored.items() if k not in {f.name for f in fields}}
    changed: list[str] = []
    errors: dict[str, str] = {}
    for field in fields:
        value = submitted.get(field.name)
        value = value.strip() if isinstance(value, str) else value
        if value in (None, ""):
            if field.secret and stored.get(field.name) not in (None, ""):
                merged[field.name] = stored[field.name]
                continue
            if field.required:
                errors[field.name] = "This field is required."
            elif not field.secret and stored.get(field.name) not in (None, ""):
                changed.append(field.name)  # a plain field cleared on purpose
            continue
        merged[field.name] = value
        if stored.get(field.name) != value:
            changed.append(field.name)
    if errors:
        raise ValidationError(errors)
    return merged, changed


def _clean_webhook_secret(vendor: str, value: str) -> str:
    value = value.strip()
    prefix = VENDOR_SUPPLIED_WEBHOOK_SECRET.get(vendor, "")
    if value and prefix and not value.startswith(prefix):
        raise ValidationError({"webhook_secret": f"The vendor's webhook secret starts with “{prefix}”."})
    return value


@transaction.atomic
def account_create(
    *,
    tenant: Tenant,
    vendor: str,
    name: str,
    credentials: dict[str, Any],
    actor: AbstractBaseUser,
    now: datetime,
    webhook_secret: str = "",
) -> ProviderAccount:
    if vendor not in CREDENTIAL_FIELDS:
        raise ValidationError({"vendor": "Choose a supported vendor."})
    merged, changed = _clean_credentials(vendor, credentials, {})
    account = ProviderAccount.objects.create(
        tenant=tenant,
        vendor=vendor,
        name=name.strip(),
        credentials=merged,
        webhook_secret=_clean_webhook_secret(vendor, webhook_secret),
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
    actor: AbstractBaseUser,
    now: datetime,
    webhook_secret: str = "",
) -> ProviderAccount:
    """Blank credential fields (and a blank webhook secret) keep what is stored."""
    merged, changed = _clean_credentials(account.vendor, credentials, account.credentials or {})
    new_secret = _clean_webhook_secret(account.vendor, webhook_secret)
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


def account_check_connection(
    *, account: ProviderAccount, actor: AbstractBaseUser | None, now: datetime
) -> ConnectionResult:
    """Ask the vendor whether the credentials work; record the answer on the account."""
    try:
        get_provider(account).check_connection()
    except ProviderError as exc:
        status = AccountStatus.AUTH_FAILED if exc.reason == Reason.AUTH_FAILED else AccountStatus.ERROR
        # Shown to the admin: our words only. The vendor's (redacted) words go to the log.
        detail = error_words(exc)
        logger.warning("Connection test of account %s failed: %s", account.pk, exc.vendor_detail or exc.reason)
    except (LookupError, ImportError) as exc:
        status, detail = AccountStatus.ERROR, f"No adapter for this vendor is installed ({exc})."
    else:
        status, detail = AccountStatus.OK, ""
    account.status, account.status_detail, account.last_checked_at = status, detail[:1000], now
    account.save(update_fields=["status", "status_detail", "last_checked_at"])
    _record(
        account=account,
        actor=actor,
        verb="provider_account.checked",
        message=f"Connection test of “{account.name}”: {account.get_status_display()}",
        data={"status": status},
        now=now,
    )
    return ConnectionResult(ok=status == AccountStatus.OK, status=status, detail=detail)


@transaction.atomic
def account_import_devices(
    *, account: ProviderAccount, property: Property, actor: AbstractBaseUser, now: datetime
) -> ImportResult:
    """Create a Lock for each vendor device not yet known (in `property`) and refresh known ones.

    Known locks keep their property: moving a lock that holds guest codes is a decision, not an import.
    Raises ProviderError when the vendor cannot be asked.
    """
    if property.tenant_id != account.tenant_id:
        raise ValidationError({"property": "Unknown property."})
    devices = get_provider(account).list_devices()
    known = {lock.vendor_device_id: lock for lock in Lock.objects.filter(provider_account=account)}
    created: list[Lock] = []
    updated: list[Lock] = []
    for device in devices:
        facts: dict[str, Any] = {
            "model": device.model,
            "requirements": device.requirements,
            "native_scheduling": device.native_scheduling,
            "pin_readable": device.pin_readable,
        }
        if device.online is not None:
            facts["online"] = device.online
        if device.battery_level is not None:
            facts["battery_level"] = device.battery_level
        lock = known.get(device.vendor_device_id)
        if lock is None:
            lock = Lock.objects.create(
                tenant_id=account.tenant_id,
                property=property,
                provider_account=account,
                vendor_device_id=device.vendor_device_id,
                name=(device.name or device.vendor_device_id)[:120],
                last_seen_at=now,
                **facts,
            )
            created.append(lock)
        else:
            for name, value in facts.items():
                setattr(lock, name, value)
            lock.last_seen_at = now
            lock.save(update_fields=[*facts, "last_seen_at"])
            updated.append(lock)
    _record(
        account=account,
        actor=actor,
        verb="provider_account.devices_imported",
        message=f"{actor} imported devices from “{account.name}”: {len(created)} new, {len(updated)} refreshed",
        data={
            "property_id": property.pk,
            "created": [lk.pk for lk in created],
            "updated": [lk.pk for lk in updated],
        },
        now=now,
    )
    return ImportResult(created=created, updated=updated)


@transaction.atomic
def account_generate_webhook_secret(
    *, account: ProviderAccount, actor: AbstractBaseUser, now: datetime
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
