"""The audit log as CSV (DESIGN §7 "Activity exports as CSV"): a page with the filters (date range in the
tenant's zone, property, lock, kind) and the export itself. Tenant-scoped, editors only. PINs never leave:
Activity rows are written without them (locks/activity.py callers), and the export masks a row's code PIN
wherever it would appear anyway."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from locks.models import Activity, Lock
from portal.activity_words import activity_sentence
from portal.http import TenantRequest
from portal.models import Property
from portal.permissions import editor_required
from portal.times import local_time, zone

# Activity.verb's first word → what a person filters by.
KINDS: dict[str, str] = {
    "booking": "Bookings",
    "code": "Codes",
    "pin": "PIN views and changes",
    "command": "Commands to locks",
    "webhook": "Vendor reports",
    "issue": "Issues",
    "lock": "Locks",
    "alert": "Alerts",
    "feed": "Booking feeds",
    "member": "Members",
    "api_key": "API keys",
    "provider_account": "Provider accounts",
    "tenant": "Settings",
}
MAX_DAYS = 366
PIN_MASK = "••••"
COLUMNS = ["when", "when_iso", "property", "lock", "guest_or_code", "kind", "what", "by", "event", "engine_words"]


class ActivityExportForm(forms.Form):
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            error_messages={"invalid": "Enter the first day as YYYY-MM-DD."})
    end = forms.DateField(label="To (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"}),
                          error_messages={"invalid": "Enter the last day as YYYY-MM-DD."})
    property = forms.ModelChoiceField(queryset=Property.objects.none(), required=False, empty_label="All properties",
                                      error_messages={"invalid_choice": "Unknown property."})
    lock = forms.ModelChoiceField(queryset=Lock.objects.none(), required=False, empty_label="All locks",
                                  error_messages={"invalid_choice": "Unknown lock."})
    kind = forms.ChoiceField(choices=[("", "Everything"), *KINDS.items()], required=False,
                             error_messages={"invalid_choice": "Unknown kind of activity."})

    def __init__(self, *args: Any, properties: QuerySet[Property], locks: QuerySet[Lock], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["property"].queryset = properties  # type: ignore[attr-defined]
        self.fields["lock"].queryset = locks  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError("The last day comes before the first.")
        if start and end and (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"Export at most {MAX_DAYS} days at a time.")
        return data


def _form(request: TenantRequest) -> ActivityExportForm:
    properties = Property.objects.for_tenant(request.tenant).order_by("name")
    locks = Lock.objects.for_tenant(request.tenant).select_related("property").order_by("property__name", "name")
    return ActivityExportForm(request.GET or None, properties=properties, locks=locks)


def _day_start(day: date, tz_name: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone(tz_name))


def activities_for_export(*, request: TenantRequest, filters: dict[str, Any]) -> QuerySet[Activity]:
    rows = Activity.objects.for_tenant(request.tenant)
    tz_name = request.tenant.timezone
    if filters.get("start"):
        rows = rows.filter(created_at__gte=_day_start(filters["start"], tz_name))
    if filters.get("end"):
        rows = rows.filter(created_at__lt=_day_start(filters["end"] + timedelta(days=1), tz_name))
    if filters.get("property"):
        prop = filters["property"]
        rows = rows.filter(Q(lock__property=prop) | Q(booking__property=prop))
    if filters.get("lock"):
        rows = rows.filter(lock=filters["lock"])
    if filters.get("kind"):
        rows = rows.filter(verb__startswith=f"{filters['kind']}.")
    return rows.select_related(
        "actor", "lock__property", "booking__property", "access_code__booking", "command"
    ).order_by("created_at", "id")


def _masked(text: str, pin: str) -> str:
    return text.replace(pin, PIN_MASK) if pin else text


def export_row(activity: Activity, tenant_tz: str) -> list[str]:
    prop = (activity.lock.property if activity.lock_id and activity.lock else
            activity.booking.property if activity.booking_id and activity.booking else None)
    tz_name = prop.timezone if prop is not None else tenant_tz
    code = activity.access_code if activity.access_code_id else None
    pin = (code.pin or "") if code is not None else ""
    who = ""
    if code is not None:
        who = code.booking.guest_name if code.booking_id and code.booking else code.name
    elif activity.booking_id and activity.booking:
        who = activity.booking.guest_name
    actor = activity.actor.get_username() if activity.actor_id and activity.actor else ""
    row = [
        local_time(activity.created_at, tz_name),
        activity.created_at.astimezone(zone(tz_name)).isoformat(timespec="seconds"),
        prop.name if prop is not None else "",
        activity.lock.name if activity.lock_id and activity.lock else "",
        who,
        KINDS.get(activity.verb.split(".", 1)[0], "Other"),
        activity_sentence(activity, tz_name),
        actor,
        activity.verb,
        activity.message,
    ]
    return [_masked(value, pin) for value in row]


class _Echo:
    """csv.writer writes into this and gets the line back, so rows stream instead of piling up."""

    def write(self, value: str) -> str:
        return value


def _lines(rows: QuerySet[Activity], tenant_tz: str) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for activity in rows.iterator(chunk_size=1000):
        yield writer.writerow(export_row(activity, tenant_tz))


@editor_required
@require_GET
def activity_export_page(request: TenantRequest) -> HttpResponse:
    return render(request, "portal/activity_export.html", {"form": _form(request)})


@editor_required
@require_GET
def activity_export_csv(request: TenantRequest) -> HttpResponse | StreamingHttpResponse:
    form = _form(request)
    if request.GET and not form.is_valid():
        return render(request, "portal/activity_export.html", {"form": form}, status=400)
    filters = form.cleaned_data if request.GET else {}
    rows = activities_for_export(request=request, filters=filters)
    stamp = timezone.now().astimezone(zone(request.tenant.timezone)).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_lines(rows, request.tenant.timezone), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lockstep-activity-{request.tenant.slug}-{stamp}.csv"'
    return response
