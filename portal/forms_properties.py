"""Forms of the property, feed and lock-placement pages. They parse and check input; portal/properties.py
and portal/lock_placement.py do the writing."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from portal.forms_settings import MAX_BUFFER_MINUTES
from portal.models import PinPolicy, Property, Tenant, validate_timezone
from portal.properties import PROPERTY_FIELDS
from providers.simulator import PROFILES


class PropertyForm(forms.Form):
    """Create or edit a property. Blank buffers and PIN policy follow the tenant's defaults. `allowed`
    narrows the form to what the user's role may change (staff: times and buffers)."""

    name = forms.CharField(max_length=120, error_messages={"required": "Name the property."})
    address = forms.CharField(max_length=255, required=False)
    timezone = forms.CharField(
        max_length=64, validators=[validate_timezone], help_text="An IANA time zone, e.g. America/New_York.",
        error_messages={"required": "Enter the property's time zone."},
    )
    checkin_time = forms.TimeField(label="Check-in time", widget=forms.TimeInput(attrs={"type": "time"}),
                                   error_messages={"required": "Enter the check-in time."})
    checkout_time = forms.TimeField(label="Check-out time", widget=forms.TimeInput(attrs={"type": "time"}),
                                    error_messages={"required": "Enter the check-out time."})
    before_minutes = forms.IntegerField(label="Code starts before check-in (minutes)", required=False,
                                        min_value=0, max_value=MAX_BUFFER_MINUTES)
    after_minutes = forms.IntegerField(label="Code ends after check-out (minutes)", required=False,
                                       min_value=0, max_value=MAX_BUFFER_MINUTES)
    pin_policy = forms.ChoiceField(label="PIN policy", required=False)
    turnover_codes = forms.BooleanField(
        label="Turnover codes", required=False,
        help_text="A cleaner's code on every lock from each check-out to the next check-in.",
    )
    backup_pool_size = forms.IntegerField(
        label="Backup codes per lock", min_value=0, max_value=5, required=False,
        help_text="Spare codes kept on each lock, ready to hand to a guest whose own code failed.",
    )

    guest_instructions = forms.CharField(
        label="Instructions for the guest", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown on the guest page: finding the door, parking, Wi-Fi. Never put a door code here.",
    )
    no_entry_alert_hours = forms.IntegerField(
        label="Alert when the guest has not entered (hours after check-in)", required=False, min_value=1,
        max_value=72, help_text="Blank: no alert. Works where the lock reports which code opened it.",
    )

    message_offset_hours = forms.IntegerField(
        label="Send the guest their codes (hours before check-in)", required=False, min_value=1, max_value=168,
        help_text="Sent only once every door has confirmed the guest's code. Blank: 24.",
    )
    message_second_offset_hours = forms.IntegerField(
        label="Backup code or alert (hours before check-in)", required=False, min_value=0, max_value=167,
        help_text="Still not confirmed by then: the guest gets a backup code where the door keeps some, "
        "otherwise staff are alerted. Blank: 2.",
    )

    def clean_backup_pool_size(self) -> int:
        return self.cleaned_data.get("backup_pool_size") or 0

    def clean_message_offset_hours(self) -> int:
        value = self.cleaned_data.get("message_offset_hours")
        return 24 if value is None else value

    def clean_message_second_offset_hours(self) -> int:
        value = self.cleaned_data.get("message_second_offset_hours")
        return 2 if value is None else value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("message_offset_hours"), data.get("message_second_offset_hours")
        if first is not None and second is not None and second >= first:
            self.add_error("message_second_offset_hours", "Choose fewer hours than for sending the codes.")
        return data

    def __init__(self, *args: Any, tenant: Tenant, allowed: tuple[str, ...] = PROPERTY_FIELDS,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default_policy = PinPolicy(tenant.default_pin_policy).label
        cast(forms.ChoiceField, self.fields["pin_policy"]).choices = [
            ("", f"Tenant default ({default_policy})"), *PinPolicy.choices
        ]
        self.fields["before_minutes"].help_text = f"Blank: the tenant default ({tenant.default_before_minutes})."
        self.fields["after_minutes"].help_text = f"Blank: the tenant default ({tenant.default_after_minutes})."
        for name in list(self.fields):
            if name not in allowed:
                del self.fields[name]
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("id", f"id_{name}")

    @staticmethod
    def initial_for(prop: Property) -> dict[str, Any]:
        return {name: getattr(prop, name) for name in PROPERTY_FIELDS}

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.fields}


class FeedForm(forms.Form):
    label = forms.CharField(max_length=60, help_text="The channel, e.g. Airbnb or Vrbo.",
                            error_messages={"required": "Name the feed (e.g. Airbnb)."})
    url = forms.URLField(label="iCal export address", max_length=1000, assume_scheme="https",
                         help_text="The channel's calendar export link (it is a secret: stored encrypted).",
                         error_messages={"required": "Paste the feed's address."})

    def clean_url(self) -> str:
        value: str = self.cleaned_data["url"]
        if not value.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("The feed address must be an http(s) URL.")
        return value


class LockPlaceForm(forms.Form):
    property = forms.ModelChoiceField(queryset=Property.objects.none(), required=False, empty_label="Unassigned",
                                      error_messages={"invalid_choice": "Choose one of your properties."})
    name = forms.CharField(max_length=120, error_messages={"required": "Name the lock."})

    def __init__(self, *args: Any, properties: QuerySet[Property], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["property"]).queryset = properties


class LockReleaseForm(forms.Form):
    codes = forms.ChoiceField(
        widget=forms.RadioSelect, initial="remove",
        choices=[("remove", "Remove its codes from the lock first (through its queue)"),
                 ("keep", "Leave its codes on the lock and stop tracking them")],
    )


class VirtualLockForm(forms.Form):
    profile = forms.ChoiceField(label="Behaves like", choices=[(name, name.title()) for name in PROFILES])
    name = forms.CharField(max_length=120, error_messages={"required": "Name the lock."})
