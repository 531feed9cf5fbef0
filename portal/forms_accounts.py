"""Provider account forms, built from the vendor credential table in providers/credentials.py.

Secret fields are write-only: they are never given an initial value, their widgets never render a
value (not even the one just submitted when the form has errors), and a blank field keeps what is stored.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings

from portal.models import Property, Tenant
from providers.credentials import CREDENTIAL_FIELDS, VENDOR_SUPPLIED_WEBHOOK_SECRET, CredentialField, masked
from providers.models import ProviderAccount


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never shows a value, for multi-line secrets (PEM keys)."""

    def format_value(self, value: Any) -> None:
        return None


def _write_only_field(spec: CredentialField, stored: Any) -> forms.CharField:
    widget = (
        WriteOnlyTextarea(attrs={"rows": 4}) if spec.multiline else forms.PasswordInput(render_value=False)
    )
    widget.attrs["autocomplete"] = "off"
    if stored not in (None, ""):
        help_text = f"{masked(stored)}. Leave blank to keep it."
        required = False
    else:
        help_text = spec.help_text
        required = spec.required
    return forms.CharField(
        label=spec.label, required=required, widget=widget, help_text=help_text, strip=True
    )


def _plain_field(spec: CredentialField, stored: Any) -> forms.Field:
    if spec.name == "seed":
        return forms.IntegerField(
            label=spec.label, required=spec.required, help_text=spec.help_text, initial=stored
        )
    if spec.name == "base_url":
        return forms.URLField(
            label=spec.label,
            required=spec.required,
            help_text=spec.help_text,
            initial=stored,
            assume_scheme="https",
        )
    return forms.CharField(label=spec.label, required=spec.required, help_text=spec.help_text, initial=stored)


class AccountForm(forms.Form):
    name = forms.CharField(max_length=120)

    def __init__(
        self, *args: Any, vendor: str, account: ProviderAccount | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.vendor = vendor
        stored = dict(account.credentials or {}) if account else {}
        if account is not None:
            self.fields["name"].initial = account.name
        self.credential_names: list[str] = []
        for spec in CREDENTIAL_FIELDS[vendor]:
            value = stored.get(spec.name)
            self.fields[spec.name] = (
                _write_only_field(spec, value) if spec.secret else _plain_field(spec, value)
            )
            self.credential_names.append(spec.name)
        if vendor in VENDOR_SUPPLIED_WEBHOOK_SECRET:
            current = account.webhook_secret if account else ""
            prefix = VENDOR_SUPPLIED_WEBHOOK_SECRET[vendor]
            self.fields["webhook_secret"] = forms.CharField(
                label="Webhook signing secret",
                required=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text=(f"{masked(current)}. Leave blank to keep it." if current else "")
                + (
                    f" Paste the secret the vendor gave you ({prefix}…)."
                    if prefix
                    else " Paste the secret the vendor gave you."
                ),
            )

    def clean_base_url(self) -> str:
        """Vendor clouds are public https services. Refuse internal addresses so an admin cannot point
        "test connection" at the server's own network (SSRF); development (DEBUG) allows anything."""
        value = self.cleaned_data.get("base_url") or ""
        if not value or settings.DEBUG:
            return value
        parts = urlsplit(value)
        if parts.scheme != "https":
            raise forms.ValidationError("Use an https:// address.")
        host = (parts.hostname or "").rstrip(".").lower()
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise forms.ValidationError("Use the vendor's public address, not an internal one.")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return value
        if not address.is_global:
            raise forms.ValidationError("Use the vendor's public address, not an internal one.")
        return value

    def credentials(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.credential_names}


class ImportDevicesForm(forms.Form):
    property = forms.ModelChoiceField(
        queryset=Property.objects.none(), help_text="New locks are added to this property."
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["property"].queryset = Property.objects.for_tenant(tenant)
