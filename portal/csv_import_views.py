"""Bookings → Import CSV: upload, preview (nothing saved), confirm (saves the good rows)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.csv_import import (
    COLUMNS,
    DATE_ORDERS,
    Action,
    CsvFileError,
    csv_apply,
    csv_preview,
    preview_to_session,
)
from portal.http import TenantRequest
from portal.permissions import editor_required, listed_properties

MAX_UPLOAD_BYTES = 2 * 1024 * 1024


def _session_key(request: TenantRequest) -> str:
    return f"csv_import:{request.tenant.pk}"


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file")
    date_order = forms.ChoiceField(label="Dates in the file are written", choices=list(DATE_ORDERS.items()),
                                   initial="iso", required=False)

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 2 MB.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("Save the file as UTF-8 CSV.") from None


@editor_required
@require_http_methods(["GET", "POST"])
def csv_import(request: TenantRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            rows = csv_preview(
                tenant=request.tenant, properties=listed_properties(request), text=form.cleaned_data["file"],
                date_order=form.cleaned_data["date_order"] or "iso",
            )
        except CsvFileError as exc:
            form.add_error("file", str(exc))
        else:
            good = preview_to_session(rows)
            request.session[_session_key(request)] = good
            counts = {action: sum(1 for r in rows if r.action == action) for action in Action.ALL}
            return render(
                request,
                "portal/csv_import_preview.html",
                {"rows": rows, "counts": counts, "to_save": len(good), "columns": COLUMNS},
            )
    return render(request, "portal/csv_import.html", {"form": form, "columns": COLUMNS})


@editor_required
@require_POST
def csv_import_confirm(request: TenantRequest) -> HttpResponse:
    rows = request.session.pop(_session_key(request), None)
    if not rows:
        messages.error(request, "Nothing to import: upload the file again.")
        return redirect("csv_import", tenant_slug=request.tenant.slug)
    result = csv_apply(
        tenant=request.tenant, properties=listed_properties(request), rows=rows, actor=request.user,
        now=timezone.now(),
    )
    messages.success(request, f"Imported: {len(result.created)} new, {len(result.updated)} changed.")
    for conflict in result.conflicts:
        messages.warning(request, f"Not imported, {conflict} It is listed as a conflict on the property page.")
    for failure in result.failed:
        messages.error(request, f"Not imported, {failure}")
    return redirect("booking_list", tenant_slug=request.tenant.slug)
