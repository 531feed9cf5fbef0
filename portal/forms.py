"""Page forms. They parse and check input; portal.services does the writing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from portal.models import Booking, Property

# Staff type a check-in "now" a minute after the clock has passed it; do not call that the past.
_GRACE = timedelta(minutes=15)


def _aware(day: date, at: time, tz_name: str) -> datetime:
    # zoneinfo resolves DST gaps and folds the way Python does (fold=0), which is good enough for a
    # wall-clock check-in time typed by staff.
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz_name))


class BookingForm(forms.Form):
    """Create or change a booking. Dates and times are read in the property's time zone; times left
    blank default to the property's check-in / check-out time."""

    property = forms.ModelChoiceField(
        queryset=Property.objects.none(),
        error_messages={"invalid_choice": "Unknown property.", "required": "Choose a property."},
    )
    guest_name = forms.CharField(max_length=200, error_messages={"required": "Enter the guest's name."})
    guest_phone = forms.CharField(max_length=40, required=False)
    guest_email = forms.EmailField(required=False)
    check_in_date = forms.DateField(
        label="Check-in date",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Enter the check-in date."},
    )
    check_in_time = forms.TimeField(
        label="Check-in time", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    check_out_date = forms.DateField(
        label="Check-out date",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Enter the check-out date."},
    )
    check_out_time = forms.TimeField(
        label="Check-out time", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    language = forms.CharField(
        label="Guest's language", max_length=8, required=False,
        help_text="e.g. pt or fr: guest messages use a template in it where one exists (blank: English).",
    )

    def __init__(
        self,
        *args: Any,
        properties: QuerySet[Property],
        booking: Booking | None = None,
        now: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        self.booking = booking
        self.now = now or timezone.now()
        if booking is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(booking)
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["property"]).queryset = properties
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("id", f"id_{name}")
            field.widget.attrs["aria-describedby"] = f"err_{name}"

    @staticmethod
    def initial_for(booking: Booking) -> dict[str, Any]:
        tz = ZoneInfo(booking.property.timezone)
        check_in, check_out = booking.check_in.astimezone(tz), booking.check_out.astimezone(tz)
        return {
            "property": booking.property,
            "guest_name": booking.guest_name,
            "guest_phone": booking.guest_phone,
            "guest_email": booking.guest_email,
            "check_in_date": check_in.date(),
            "check_in_time": check_in.time().replace(second=0, microsecond=0),
            "check_out_date": check_out.date(),
            "check_out_time": check_out.time().replace(second=0, microsecond=0),
            "notes": booking.notes,
            "language": booking.language,
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean returns; its stub allows None
        prop: Property | None = data.get("property")
        if prop is None or not data.get("check_in_date") or not data.get("check_out_date"):
            return data
        check_in = _aware(data["check_in_date"], data.get("check_in_time") or prop.checkin_time, prop.timezone)
        check_out = _aware(
            data["check_out_date"], data.get("check_out_time") or prop.checkout_time, prop.timezone
        )
        data["check_in"], data["check_out"] = check_in, check_out
        if check_out <= check_in:
            self.add_error("check_out_date", "Check-out must be after check-in.")
            return data
        # The form shows minutes only, so an unchanged check-in comes back without its seconds.
        moved_in = self.booking is None or self.booking.check_in.replace(second=0, microsecond=0) != check_in
        if moved_in and check_in < self.now - _GRACE:
            self.add_error("check_in_date", "Check-in is in the past.")
        if check_out <= self.now:
            self.add_error("check_out_date", "Check-out is in the past.")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "property": data["property"],
            "guest_name": data["guest_name"],
            "guest_phone": data["guest_phone"],
            "guest_email": data["guest_email"],
            "check_in": data["check_in"],
            "check_out": data["check_out"],
            "notes": data["notes"],
            "language": data["language"].strip().lower(),
        }


# Service field names → the form field the message belongs next to.
SERVICE_ERROR_FIELDS = {
    "check_in": "check_in_date",
    "check_out": "check_out_date",
    "property": "property",
    "guest_name": "guest_name",
    "guest_phone": "guest_phone",
    "guest_email": "guest_email",
    "notes": "notes",
    "language": "language",
}


def add_service_errors(form: forms.Form, error: Any, *, fields: set[str] | None = None) -> None:
    """Put a service's ValidationError messages next to the fields they concern (`fields`: the service's
    field names are the form's own)."""
    if hasattr(error, "error_dict"):
        for key, messages in error.message_dict.items():
            field = (key if key in fields else None) if fields is not None else SERVICE_ERROR_FIELDS.get(key)
            for message in messages:
                form.add_error(field, message)
    else:
        for message in error.messages:
            form.add_error(None, message)
