"""The form staff fill in to give a person who is not a guest a code (locks.people does the writing).

Times are typed in the property's zone; both empty means an ongoing code."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from locks.models import PEOPLE_PURPOSES, AccessCode

_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


def _in_zone(value: datetime | None, tz_name: str) -> datetime | None:
    """The wall-clock time typed, read in `tz_name` (Django read it in the server's zone)."""
    if value is None:
        return None
    naive = timezone.make_naive(value) if timezone.is_aware(value) else value
    return naive.replace(tzinfo=ZoneInfo(tz_name))


class PeopleCodeForm(forms.Form):
    purpose = forms.ChoiceField(
        label="Who is it for", choices=[(p.value, p.label) for p in PEOPLE_PURPOSES],
        error_messages={"invalid_choice": "Choose cleaner, maintenance, owner or staff."},
    )
    holder_name = forms.CharField(label="Name", max_length=120,
                                  error_messages={"required": "Say who the code is for."})
    pin = forms.CharField(
        label="PIN", required=False, max_length=12,
        help_text="Leave empty to generate one that suits every lock.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    starts_at = forms.DateTimeField(
        label="Starts", required=False, input_formats=_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter a real date and time."},
    )
    ends_at = forms.DateTimeField(
        label="Ends", required=False, input_formats=_FORMATS,
        help_text="Leave start and end empty for an ongoing code.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter a real date and time."},
    )

    def __init__(self, *args: Any, tz_name: str, code: AccessCode | None = None, **kwargs: Any) -> None:
        self.tz_name = tz_name
        if code is not None and "initial" not in kwargs:
            tz = ZoneInfo(tz_name)
            kwargs["initial"] = {
                "purpose": code.purpose, "holder_name": code.holder_name or code.name,
                "starts_at": code.starts_at.astimezone(tz).replace(tzinfo=None) if code.starts_at else None,
                "ends_at": code.ends_at.astimezone(tz).replace(tzinfo=None) if code.ends_at else None,
            }
        super().__init__(*args, **kwargs)
        self.fields["starts_at"].help_text = f"In the property's time zone ({tz_name})."
        if code is not None:
            # The purpose is fixed once the code exists; the PIN is changed only when a new one is typed.
            self.fields["purpose"].disabled = True
            self.fields["pin"].help_text = "Leave empty to keep the current PIN."
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("id", f"id_{name}")
            field.widget.attrs["aria-describedby"] = f"err_{name}"

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "holder_name": data["holder_name"],
            "pin": data.get("pin") or None,
            "starts_at": _in_zone(data.get("starts_at"), self.tz_name),
            "ends_at": _in_zone(data.get("ends_at"), self.tz_name),
        }

