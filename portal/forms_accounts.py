"""Provider account forms, built from the vendor credential table in providers/credentials.py.

Secret fields are write-only: they are never given an initial value, their widgets never render a
value (not even the one just submitted when the form has errors), and a blank field keeps what is stored.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms

from portal.models import Property, Tenant
from providers.credentials import CREDENTIAL_FIELDS, VENDOR_SUPPLIED_WEBHOOK_SECRET, CredentialField, masked
from providers.egress import EgressRefused, EgressSchemeRefused, url_check
from providers.http import VENDOR_HOSTS
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
        """Vendor clouds live on known hosts (providers/http.py VENDOR_HOSTS): a base URL elsewhere is
        refused here and again whenever it is used (SSRF). DEBUG changes nothing; only
        EGRESS_ALLOW_PRIVATE_ADDRESSES lets a loopback test stub through."""
        value = self.cleaned_data.get("base_url") or ""
        if not value:
            return value
        hosts = VENDOR_HOSTS.get(self.vendor, frozenset())
        try:
            url_check(value, allowed_hosts=hosts, https_only=True)
        except EgressSchemeRefused as exc:
            raise forms.ValidationError("Use an https:// address.") from exc
        except EgressRefused as exc:
            raise forms.ValidationError(
                f"Use the vendor's public address ({', '.join(sorted(hosts)) or 'none is known'})."
            ) from exc
        return value

    def credentials(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.credential_names}


class ImportDevicesForm(forms.Form):
    property = forms.ModelChoiceField(
        queryset=Property.objects.none(), required=False, empty_label="Unassigned (assign them later)",
        help_text="New locks land here; known locks stay where they are.",
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["property"]).queryset = (
            Property.objects.for_tenant(tenant).filter(archived_at__isnull=True)
        )
