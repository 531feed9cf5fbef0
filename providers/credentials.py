"""Vendor credential tables (DESIGN §3 ProviderAccount, §9): which fields each vendor needs, which are
secret (write-only: never rendered back, blank keeps the stored value), and who signs webhooks with what.
Pure data and pure functions: forms are built from these tables, and services validate with them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from providers.models import Vendor


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    required: bool = True
    secret: bool = True  # write-only: never rendered back, blank keeps the stored value
    multiline: bool = False
    help_text: str = ""


# OAuth vendors (providers/oauth.py): the app registration's client id and secret; the tokens themselves
# come from "Connect" and are stored beside these, never in a form.
OAUTH_CLIENT_ID = CredentialField(
    "client_id", "OAuth client id", required=False, secret=False,
    help_text="From the vendor's app registration; then use “Connect” on the account page.",
)
OAUTH_CLIENT_SECRET = CredentialField("client_secret", "OAuth client secret", required=False)

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
        OAUTH_CLIENT_ID,
        OAUTH_CLIENT_SECRET,
        CredentialField(
            "token", "Access token", required=False,
            help_text="A personal access token, only when the account is not connected with OAuth.",
        ),
        CredentialField(
            "public_key",
            "Webhook public key",
            required=False,
            multiline=True,
            help_text="The SmartApp's public key (PEM) used to verify signed webhook requests.",
        ),
        BASE_URL,
    ),
    Vendor.NUKI: (
        CredentialField(
            "api_token", "API token", required=False,
            help_text="A Nuki Web API token; leave blank to connect with Nuki Web OAuth instead.",
        ),
        OAUTH_CLIENT_ID,
        OAUTH_CLIENT_SECRET,
        BASE_URL,
    ),
    Vendor.SCHLAGE: (
        CredentialField("api_key", "API key", help_text="The Allegion subscription key."),
        OAUTH_CLIENT_ID,
        OAUTH_CLIENT_SECRET,
        CredentialField(
            "token",
            "Access token",
            required=False,
            help_text="Only when the account is not connected with OAuth (“Connect” on the account page).",
        ),
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


def masked(value: Any) -> str:
    """How a stored secret is shown: that it is set, never any of it."""
    return "•••• set (last 4 hidden)" if value not in (None, "") else "not set"


def clean_credentials(
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


def clean_webhook_secret(vendor: str, value: str) -> str:
    value = value.strip()
    prefix = VENDOR_SUPPLIED_WEBHOOK_SECRET.get(vendor, "")
    if value and prefix and not value.startswith(prefix):
        raise ValidationError({"webhook_secret": f"The vendor's webhook secret starts with “{prefix}”."})
    return value


