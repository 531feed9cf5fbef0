"""Forms of the admin Settings area. They validate input; the writes are in portal/members.py."""

from __future__ import annotations

from typing import Any

from django import forms

from locks.lead import MIN_EXPOSURE_HOURS
from portal.members import TENANT_DEFAULT_FIELDS
from portal.models import Membership, Property, Role, Tenant

MIN_CODE_LENGTH, MAX_CODE_LENGTH = 4, 8  # what every supported vendor accepts (VENDORS.md)
MAX_BUFFER_MINUTES = 24 * 60
MAX_EXPOSURE_HOURS = 48  # beyond two days a lock that keeps failing needs a person, not an earlier code


def _tenant_properties(tenant: Tenant) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        queryset=Property.objects.for_tenant(tenant),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Owners see only these properties.",
    )


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF)

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["properties"] = _tenant_properties(tenant)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean returns; its stub allows None
        if data.get("properties") and data.get("role") != Role.OWNER:
            self.add_error("properties", "Only owners are linked to properties.")
        return data


class MemberForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args: Any, membership: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].initial = membership.role
        self.fields["properties"] = _tenant_properties(membership.tenant)
        self.fields["properties"].initial = list(membership.owned_properties.values_list("pk", flat=True))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean returns; its stub allows None
        if data.get("properties") and data.get("role") != Role.OWNER:
            self.add_error("properties", "Only owners are linked to properties.")
        return data


class TenantDefaultsForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = list(TENANT_DEFAULT_FIELDS)
        labels = {
            "default_before_minutes": "Code starts before check-in (minutes)",
            "default_after_minutes": "Code ends after check-out (minutes)",
            "default_code_length": "PIN length",
            "default_pin_policy": "PIN policy",
            "alert_emails_enabled": "Email admins about failing locks",
            "max_early_exposure_hours": "Maximum early exposure (hours)",
        }
        help_texts = {
            "timezone": "An IANA time zone, e.g. America/New_York or Europe/Lisbon.",
            "max_early_exposure_hours": "Locks that keep failing get their codes earlier, so guests are not "
            "left outside; a code is never live on a lock more than this long before its window. Locks that "
            "schedule codes themselves are not affected.",
        }

    def clean_default_code_length(self) -> int:
        value = self.cleaned_data["default_code_length"]
        if not MIN_CODE_LENGTH <= value <= MAX_CODE_LENGTH:
            raise forms.ValidationError(
                f"Choose a length from {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} digits."
            )
        return value

    def _clean_buffer(self, name: str) -> int:
        value = self.cleaned_data[name]
        if value > MAX_BUFFER_MINUTES:
            raise forms.ValidationError(f"At most {MAX_BUFFER_MINUTES} minutes (one day).")
        return value

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left out of a post (a form saved before the setting existed): it keeps its value.
        self.fields["max_early_exposure_hours"].required = False

    def clean_max_early_exposure_hours(self) -> int:
        value = self.cleaned_data["max_early_exposure_hours"]
        if value is None:
            return self.instance.max_early_exposure_hours
        if not MIN_EXPOSURE_HOURS <= value <= MAX_EXPOSURE_HOURS:
            raise forms.ValidationError(f"Choose from {MIN_EXPOSURE_HOURS} to {MAX_EXPOSURE_HOURS} hours.")
        return value

    def clean_default_before_minutes(self) -> int:
        return self._clean_buffer("default_before_minutes")

    def clean_default_after_minutes(self) -> int:
        return self._clean_buffer("default_after_minutes")
