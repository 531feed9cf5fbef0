"""CSV booking import: parse and check every row first (preview), save only the good rows after confirmation.

Columns: property (name or id), guest_name, guest_phone, guest_email, check_in, check_out, external_ref, and
optionally language (the guest's, for messages: pt, de-AT).
Dates are ``YYYY-MM-DD`` (the property's check-in/check-out time applies) or ``YYYY-MM-DD HH:MM`` /
ISO 8601 (local to the property unless an offset is given); when the upload says the file writes dates the
US way (``12/28/2026``) or day first (``28/12/2026``), those are read too, with an optional ``HH:MM``.
A row that overlaps a confirmed booking of its property is not saved: it becomes a conflict on the
property page (portal/conflicts.py). A row whose ``external_ref`` matches an earlier
CSV import changes that booking; other rows create bookings. Nothing is written by ``csv_preview``; the
preview is plain data (JSON-safe) so the page can keep it in the session until the user confirms, and
``csv_apply`` checks each row again, because bookings may have changed in between.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from portal import services as booking_services
from portal.conflicts import conflict_record
from portal.models import Booking, BookingSource, BookingStatus, Property, Tenant

COLUMNS = ("property", "guest_name", "guest_phone", "guest_email", "check_in", "check_out", "external_ref", "language")
REQUIRED_COLUMNS = ("property", "guest_name", "check_in", "check_out")
MAX_ROWS = 2000
DATE_HELP = "use YYYY-MM-DD or YYYY-MM-DD HH:MM"
# How the file writes dates that are not ISO (the upload form asks). ISO dates are read whatever the choice.
DATE_ORDERS = {
    "iso": "YYYY-MM-DD (ISO)",
    "us": "MM/DD/YYYY (US)",
    "dmy": "DD/MM/YYYY (day first)",
}
SLASHED = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?:[ T](\d{1,2}):(\d{2}))?$")


class CsvFileError(ValueError):
    """The file as a whole cannot be read (not CSV, missing columns, too many rows)."""


class Action:
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"  # overlaps a confirmed booking: listed on the property page, not saved
    REJECT = "reject"
    ALL = (CREATE, UPDATE, UNCHANGED, CONFLICT, REJECT)


@dataclass
class CsvRow:
    line: int
    values: dict[str, str]
    action: str = Action.CREATE
    errors: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    booking_id: int | None = None
    date_order: str = "iso"
    conflict: str = ""


@dataclass
class CsvResult:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "line 4: why"
    conflicts: list[str] = field(default_factory=list)  # "line 4: overlaps …"


def _slashed(raw: str, order: str, default_time: time) -> tuple[date, time] | None:
    match = SLASHED.match(raw)
    if match is None or order not in ("us", "dmy"):
        return None
    first, second, year, hour, minute = match.groups()
    month, day = (first, second) if order == "us" else (second, first)
    at = time(int(hour), int(minute)) if hour is not None else default_time
    return date(int(year), int(month), int(day)), at


def _parse_when(raw: str, prop: Property, default_time: time, label: str, order: str = "iso") -> datetime:
    raw = raw.strip()
    zone = ZoneInfo(prop.timezone)
    help_text = DATE_HELP if order == "iso" else f"use {DATE_ORDERS[order].split(' ')[0]} [HH:MM] or {DATE_HELP[4:]}"
    try:
        slashed = _slashed(raw, order, default_time)
        if slashed is not None:
            return datetime.combine(*slashed, tzinfo=zone)
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), default_time, tzinfo=zone)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"Bad {label} date “{raw}” ({help_text}).") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _find_property(raw: str, properties: dict[str, Property]) -> Property:
    prop = properties.get(raw.strip().casefold())
    if prop is None:
        raise ValidationError(f"Unknown property “{raw.strip()}”." if raw.strip() else "Missing property.")
    return prop


def _clean(
    values: dict[str, str], properties: dict[str, Property], order: str = "iso"
) -> tuple[dict[str, Any], list[str]]:
    """The booking fields of one row, and every reason it cannot be imported."""
    errors: list[str] = []
    data: dict[str, Any] = {
        "guest_name": values["guest_name"].strip(),
        "guest_phone": values["guest_phone"].strip(),
        "guest_email": values["guest_email"].strip(),
    }
    if not data["guest_name"]:
        errors.append("Missing guest name.")
    if data["guest_email"]:
        try:
            validate_email(data["guest_email"])
        except ValidationError:
            errors.append(f"Bad email “{data['guest_email']}”.")
    if values.get("language", "").strip():
        try:
            data["language"] = booking_services.language_clean(values["language"])
        except ValidationError:
            errors.append(f"Bad language “{values['language'].strip()[:20]}” (e.g. pt, de-AT).")
    try:
        prop = data["property"] = _find_property(values["property"], properties)
    except ValidationError as exc:
        errors.extend(exc.messages)
        return data, errors
    for key, default_time, label in (
        ("check_in", prop.checkin_time, "check-in"),
        ("check_out", prop.checkout_time, "check-out"),
    ):
        try:
            data[key] = _parse_when(values[key], prop, default_time, label, order)
        except ValidationError as exc:
            errors.extend(exc.messages)
    if "check_in" in data and "check_out" in data and data["check_out"] <= data["check_in"]:
        errors.append("Check-out must be after check-in.")
    return data, errors


def _properties_by_key(properties: QuerySet[Property]) -> dict[str, Property]:
    by_key: dict[str, Property] = {}
    for prop in properties:
        by_key[prop.name.casefold()] = prop
        by_key[str(prop.pk)] = prop
    return by_key


def _read(text: str) -> list[dict[str, str]]:
    text = text.lstrip("\ufeff")
    try:
        # Spreadsheets in many locales save with ";" (or tabs); the header row tells which.
        dialect: Any = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise CsvFileError(f"This is not a CSV file: {exc}") from exc
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvFileError(f"Missing column(s): {', '.join(missing)}. Expected: {', '.join(COLUMNS)}.")
    reader.fieldnames = header
    try:
        rows = [{name: (row.get(name) or "") for name in COLUMNS} for row in reader]
    except csv.Error as exc:
        raise CsvFileError(f"The CSV file is malformed: {exc}") from exc
    if len(rows) > MAX_ROWS:
        raise CsvFileError(f"At most {MAX_ROWS} rows per file.")
    return rows


def _changed_fields(booking: Booking, data: dict[str, Any]) -> list[str]:
    return [name for name, value in data.items() if getattr(booking, name) != value]


def csv_preview(
    *, tenant: Tenant, properties: QuerySet[Property], text: str, date_order: str = "iso"
) -> list[CsvRow]:
    """What importing ``text`` would do, row by row. Writes nothing."""
    if date_order not in DATE_ORDERS:
        raise CsvFileError("Choose how the file writes dates.")
    by_key = _properties_by_key(properties)
    existing = {
        b.external_ref: b
        for b in Booking.objects.for_tenant(tenant).filter(source=BookingSource.CSV).exclude(external_ref="")
    }
    seen_refs: set[str] = set()
    preview = []
    for number, values in enumerate(_read(text), start=2):  # line 1 is the header
        row = CsvRow(line=number, values=values, date_order=date_order)
        data, row.errors = _clean(values, by_key, date_order)
        ref = values["external_ref"].strip()
        if ref in seen_refs:
            row.errors.append(f"Reference “{ref}” appears twice in this file.")
        if ref:
            seen_refs.add(ref)
        booking = existing.get(ref) if ref else None
        if booking is not None:
            row.booking_id = booking.pk
            if booking.status == BookingStatus.CANCELLED:
                row.errors.append(f"Booking “{ref}” was cancelled; import it under a new reference.")
            elif booking.property_id not in {p.pk for p in by_key.values()}:
                row.errors.append(f"Unknown property for booking “{ref}”.")
            elif not row.errors:
                row.changes = _changed_fields(booking, data)
                row.action = Action.UPDATE if row.changes else Action.UNCHANGED
        if row.errors:
            row.action = Action.REJECT
        elif row.action in (Action.CREATE, Action.UPDATE):
            clash = booking_services.booking_overlapping(
                prop=data["property"], check_in=data["check_in"], check_out=data["check_out"], exclude=booking
            )
            if clash is not None:
                row.action = Action.CONFLICT
                row.conflict = booking_services.BookingOverlap(clash, data["property"]).messages[0]
        preview.append(row)
    return preview


def preview_to_session(rows: list[CsvRow]) -> list[dict[str, Any]]:
    """The rows the confirmation will try: conflicts too, so they are listed on the property page."""
    return [asdict(row) for row in rows if row.action in (Action.CREATE, Action.UPDATE, Action.CONFLICT)]


def csv_apply(
    *,
    tenant: Tenant,
    properties: QuerySet[Property],
    rows: list[dict[str, Any]],
    actor: User | None,
    now: datetime,
) -> CsvResult:
    """Save the previewed good rows, checking each again. One bad row does not stop the others."""
    by_key = _properties_by_key(properties)
    visible = Booking.objects.for_tenant(tenant).filter(property__in=properties, source=BookingSource.CSV)
    result = CsvResult()
    for stored in rows:
        row = CsvRow(**stored)
        data, errors = _clean(row.values, by_key, row.date_order if row.date_order in DATE_ORDERS else "iso")
        ref = row.values["external_ref"].strip()
        try:
            if errors:
                raise ValidationError(errors)
            with transaction.atomic():
                booking = visible.filter(external_ref=ref).first() if ref else None
                if booking is None:
                    booking = booking_services.booking_create(
                        tenant=tenant, source=BookingSource.CSV, external_ref=ref, actor=actor, now=now, **data
                    )
                    result.created.append(booking.pk)
                elif booking.status == BookingStatus.CONFIRMED:
                    changes = {name: data[name] for name in _changed_fields(booking, data)}
                    if changes:
                        booking_services.booking_update(booking=booking, actor=actor, now=now, **changes)
                        result.updated.append(booking.pk)
                else:
                    raise ValidationError(f"Booking “{ref}” was cancelled meanwhile.")
        except booking_services.BookingOverlap as exc:
            conflict_record(prop=data["property"], feed=None, source=BookingSource.CSV, external_ref=ref,
                            guest_name=data["guest_name"], check_in=data["check_in"], check_out=data["check_out"],
                            clash=exc.clash, now=now)
            result.conflicts.append(f"line {row.line}: {' '.join(exc.messages)}")
        except ValidationError as exc:
            result.failed.append(f"line {row.line}: {' '.join(exc.messages)}")
        except IntegrityError:
            result.failed.append(f"line {row.line}: reference “{ref}” was imported meanwhile.")
    return result
