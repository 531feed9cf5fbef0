"""API shapes. Read serializers mirror the models; write serializers only validate input for services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from locks.models import PEOPLE_PURPOSE_CHOICES, AccessCode, Lock, LockCommand, LockIssue
from portal.models import Booking, Property
from portal.services import LANGUAGE_TAG


@extend_schema_field({"type": "string", "pattern": r"^\d{2}:\d{2}:\d{2}$", "example": "15:00:00"})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time at the property (no offset), so not an RFC 3339 "time"."""


class PropertySerializer(serializers.ModelSerializer):
    checkin_time = LocalTimeField(read_only=True)
    checkout_time = LocalTimeField(read_only=True)
    # What applies: the property's own value, else the tenant default.
    before_minutes = serializers.IntegerField(source="effective_before_minutes", read_only=True)
    after_minutes = serializers.IntegerField(source="effective_after_minutes", read_only=True)
    pin_policy = serializers.CharField(source="effective_pin_policy", read_only=True)

    class Meta:
        model = Property
        fields = [
            "id", "name", "address", "timezone", "checkin_time", "checkout_time", "before_minutes",
            "after_minutes", "pin_policy", "archived_at",
        ]
        read_only_fields = fields


class LockSerializer(serializers.ModelSerializer):
    vendor = serializers.CharField(source="provider_account.vendor", read_only=True)

    class Meta:
        model = Lock
        fields = [
            "id", "property", "name", "model", "vendor", "requirements", "native_scheduling", "pin_readable",
            "online", "battery_level", "last_seen_at", "last_reconciled_at", "reconcile_requested",
        ]
        read_only_fields = fields


class BookingCodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessCode
        fields = ["id", "lock", "status", "starts_at", "ends_at", "first_used_at"]
        read_only_fields = fields


class BookingSerializer(serializers.ModelSerializer):
    access_codes = BookingCodeSerializer(many=True, read_only=True)
    guest_email = serializers.CharField(read_only=True)  # may be "", which is not an "email" format

    class Meta:
        model = Booking
        fields = [
            "id", "property", "external_ref", "source", "guest_name", "guest_phone", "guest_email", "check_in",
            "check_out", "status", "notes", "language", "first_entry_at", "created_at", "updated_at", "access_codes",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class ScopedPropertyField(serializers.PrimaryKeyRelatedField):
    """A property id of the caller's tenant; any other id reads "Unknown property." (never a 500)."""

    default_error_messages = {
        "required": "This field is required.",
        "does_not_exist": "Unknown property.",
        "incorrect_type": "Unknown property.",
    }

    def get_queryset(self) -> Any:
        access = self.context.get("access")
        if access is None:  # schema generation
            return Property.objects.none()
        return access.properties()


class BookingWriteSerializer(serializers.Serializer):
    property = ScopedPropertyField()
    guest_name = serializers.CharField(max_length=200)
    guest_phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    guest_email = serializers.EmailField(required=False, allow_blank=True)
    check_in = serializers.DateTimeField()
    check_out = serializers.DateTimeField()
    # A subclass may drop it by setting None (DRF removes declared fields that way).
    external_ref: serializers.CharField | None = serializers.CharField(max_length=200, required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    # The guest's language for messages ("pt", "de-at"); blank: English. Used where a template exists in it.
    language = serializers.RegexField(LANGUAGE_TAG, max_length=8, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        check_in = attrs.get("check_in", getattr(self.instance, "check_in", None))
        check_out = attrs.get("check_out", getattr(self.instance, "check_out", None))
        if check_in and check_out and check_out <= check_in:
            raise serializers.ValidationError({"check_out": "Check-out must be after check-in."})
        return attrs


class BookingByRefSerializer(BookingWriteSerializer):
    external_ref = None  # comes from the URL


class AccessCodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessCode
        fields = [
            "id", "lock", "booking", "purpose", "code_type", "name", "holder_name", "starts_at", "ends_at", "program_at",
            "status", "is_scheduled_on_device", "verification", "last_reason", "guest_notified", "first_used_at",
            "replaces",
        ]
        read_only_fields = fields


class AccessCodeWithPinSerializer(AccessCodeSerializer):
    """For staff and admin callers only; every response that carries a PIN is recorded in Activity."""

    pin = serializers.SerializerMethodField()

    class Meta(AccessCodeSerializer.Meta):
        fields = [*AccessCodeSerializer.Meta.fields, "pin"]
        read_only_fields = fields

    def get_pin(self, code: AccessCode) -> str | None:
        return self.context.get("revealed_pin")


class LockCommandSerializer(serializers.ModelSerializer):
    class Meta:
        model = LockCommand
        fields = [
            "id", "lock", "access_code", "action", "state", "attempt", "not_before", "vendor_ref", "sent_at",
            "finished_at", "reason", "vendor_detail", "created_at",
        ]
        read_only_fields = fields


class LockIssueSerializer(serializers.ModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = LockIssue
        fields = [
            "id", "lock", "access_code", "command", "kind", "kind_display", "status", "first_seen_at",
            "last_seen_at", "occurrences", "detail", "resolved_at",
        ]
        read_only_fields = fields


class PinCheckSerializer(serializers.Serializer):
    pin = serializers.CharField(max_length=16, trim_whitespace=True)


class RegenerateSerializer(serializers.Serializer):
    pin = serializers.CharField(
        max_length=16, trim_whitespace=True, required=False,
        help_text="A PIN of your choosing; checked against the lock's rules and its live codes. "
        "Leave out to have one generated.",
    )


class PeopleCodeWriteSerializer(serializers.Serializer):
    """A code for a person who is not a guest, on one `lock` or on every lock of a `property`. Both times
    left out (or null) make an ongoing code; send RFC 3339 times with their offset."""

    purpose = serializers.ChoiceField(choices=PEOPLE_PURPOSE_CHOICES)
    holder_name = serializers.CharField(max_length=120)
    lock = serializers.IntegerField(required=False, min_value=1)
    property = serializers.IntegerField(required=False, min_value=1)
    pin = serializers.CharField(max_length=16, required=False, allow_blank=True,
                                help_text="Leave out to have one generated (one PIN for every door where it fits).")
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("lock" in attrs) == ("property" in attrs):
            raise serializers.ValidationError({"lock": ["Send either lock or property."]})
        return attrs


class PeopleCodeUpdateSerializer(serializers.Serializer):
    holder_name = serializers.CharField(max_length=120, required=False)
    pin = serializers.CharField(max_length=16, required=False, allow_blank=True)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)


class PinCheckResultSerializer(serializers.Serializer):
    lock = serializers.IntegerField()
    pin_usable = serializers.BooleanField()


class ReconcileRequestedSerializer(serializers.Serializer):
    lock = serializers.IntegerField()
    reconcile_requested = serializers.BooleanField()
