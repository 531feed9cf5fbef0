from __future__ import annotations

import hashlib
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django_otp.models import Device, ThrottlingMixin

from portal.encryption import EncryptedTextField
from portal.tenancy import TenantManager


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (e.g. Europe/Lisbon).")


class PinPolicy(models.TextChoices):
    RANDOM = "random", "Random"
    PHONE_LAST4 = "phone_last4", "Last 4 digits of the guest's phone (random fallback)"


class Tenant(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    default_before_minutes = models.PositiveIntegerField(default=30)
    default_after_minutes = models.PositiveIntegerField(default=30)
    default_code_length = models.PositiveSmallIntegerField(default=6)
    default_pin_policy = models.CharField(max_length=20, choices=PinPolicy.choices, default=PinPolicy.RANDOM)
    alert_emails_enabled = models.BooleanField(default=True)
    # A guest's code is never live on a lock earlier than this before its window (DESIGN §4 "Adaptive lead"):
    # the cap on how early a flaky just-in-time lock is programmed. Natively scheduling locks enforce the
    # window themselves and keep their preload.
    max_early_exposure_hours = models.PositiveSmallIntegerField(default=6)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    STAFF = "staff", "Staff"
    OWNER = "owner", "Owner"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def can_edit(self) -> bool:
        """Admins and staff change things; owners only read."""
        return self.role in (Role.ADMIN, Role.STAFF)


class Invitation(models.Model):
    """An admin's offer of a role in a tenant, waiting for the invitee (DESIGN §9).

    Nothing is attached until the invitee accepts through the emailed link. Only a SHA-256 of the link's
    token is stored; an invitation is single use and expires.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()  # lower-cased
    role = models.CharField(max_length=10, choices=Role.choices)
    properties: models.ManyToManyField[Property, Any] = models.ManyToManyField("Property", blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["email"]
        constraints = [
            # One open invitation per address and tenant: a new one replaces (revokes) the old.
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant} ({self.role})"


class Property(models.Model):
    """A place with locks. Buffers and PIN policy are either the property's own (set) or the tenant's
    default (NULL); read them through the `effective_…` properties, the one place that resolves them."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="properties")
    name = models.CharField(max_length=120)
    address = models.CharField(max_length=255, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    checkin_time = models.TimeField(default="15:00")
    checkout_time = models.TimeField(default="11:00")
    before_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Code starts this long before check-in (blank: the tenant default)."
    )
    after_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Code ends this long after check-out (blank: the tenant default)."
    )
    pin_policy = models.CharField(max_length=20, choices=PinPolicy.choices, blank=True, default="")
    owners = models.ManyToManyField(Membership, blank=True, related_name="owned_properties")
    # Opt-in: a cleaner's code on every lock between one stay's check-out and the next one's check-in
    # (locks.turnover keeps it in step with the bookings).
    turnover_codes = models.BooleanField(default=False)
    # Backup codes kept programmed on each lock, ready to hand to a guest whose own code failed (locks.backup).
    backup_pool_size = models.PositiveSmallIntegerField(default=0)
    # What the guest page shows the guest (how to find the door, parking, Wi-Fi): the guest's words only.
    guest_instructions = models.TextField(blank=True)
    # Alert staff when a guest has not opened a door this many hours after check-in (blank: no alert).
    no_entry_alert_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Alert when the guest has not entered this many hours after check-in "
        "(only for locks that report which code opened them; blank: off)."
    )
    # Guest messages (portal/messages.py, DESIGN §4 "Guests are told only what is true"): the code message
    # goes out this long before check-in if every door has confirmed its code; still unconfirmed at the
    # second offset, the guest gets a backup code or staff are alerted.
    message_offset_hours = models.PositiveSmallIntegerField(
        default=24, help_text="Send the guest their codes this many hours before check-in (once every door has them).")
    message_second_offset_hours = models.PositiveSmallIntegerField(
        default=2, help_text="Still not on every door this many hours before check-in: a backup code, or staff are alerted.")
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        verbose_name_plural = "properties"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="property_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_before_minutes(self) -> int:
        return self.tenant.default_before_minutes if self.before_minutes is None else self.before_minutes

    @property
    def effective_after_minutes(self) -> int:
        return self.tenant.default_after_minutes if self.after_minutes is None else self.after_minutes

    @property
    def effective_pin_policy(self) -> str:
        return self.pin_policy or self.tenant.default_pin_policy

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class BookingFeed(models.Model):
    """One iCal export of a channel (Airbnb, Vrbo, …) for a property. The URL carries the channel's secret
    token, so it is stored encrypted and never shown again in full."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="booking_feeds")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="feeds")
    label = models.CharField(max_length=60)
    url = EncryptedTextField()
    last_synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["label", "id"]

    def __str__(self) -> str:
        return f"{self.label} ({self.property})"


class BookingStatus(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"


class BookingSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    API = "api", "API"
    ICAL = "ical", "iCal feed"
    CSV = "csv", "CSV import"


class Booking(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="bookings")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="bookings")
    external_ref = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=BookingSource.choices, default=BookingSource.MANUAL)
    guest_name = models.CharField(max_length=200)
    guest_phone = models.CharField(max_length=40, blank=True)
    guest_email = models.EmailField(blank=True)
    check_in = models.DateTimeField()
    check_out = models.DateTimeField()
    status = models.CharField(max_length=10, choices=BookingStatus.choices, default=BookingStatus.CONFIRMED)
    feed = models.ForeignKey(BookingFeed, null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings")
    channel_ref = models.CharField(max_length=60, blank=True, help_text="The channel's reservation code.")
    notes = models.TextField(blank=True)
    # The guest page link (portal/guest_links.py): only a SHA-256 of its token; "" when there is none.
    guest_link_hash = models.CharField(max_length=64, blank=True, default="")
    guest_link_created_at = models.DateTimeField(null=True, blank=True)
    # The first time one of the booking's codes opened a door, as the lock reported it (locks/arrivals.py).
    first_entry_at = models.DateTimeField(null=True, blank=True)
    no_entry_alerted_at = models.DateTimeField(null=True, blank=True)
    # The guest's language for messages (e.g. "pt"); blank: English. Used where a template exists in it.
    language = models.CharField(max_length=8, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        ordering = ["check_in"]
        constraints = [
            models.CheckConstraint(condition=Q(check_out__gt=F("check_in")), name="booking_checkout_after_checkin"),
            models.UniqueConstraint(
                fields=["tenant", "source", "external_ref"],
                condition=~Q(external_ref=""),
                name="booking_unique_external_ref",
            ),
            models.UniqueConstraint(
                fields=["guest_link_hash"], condition=~Q(guest_link_hash=""), name="booking_unique_guest_link"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "check_in"]), models.Index(fields=["property", "check_out"])]

    def __str__(self) -> str:
        return f"{self.guest_name} · {self.property} · {self.check_in:%Y-%m-%d}"


class BookingConflict(models.Model):
    """A stay from a feed or a CSV file that overlaps a confirmed booking of the same property. It is not
    imported (confirmed stays never overlap); it waits here, on the property page, until the clash is gone
    (the stay imports) or the feed stops listing it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="booking_conflicts")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="conflicts")
    feed = models.ForeignKey(BookingFeed, null=True, blank=True, on_delete=models.CASCADE, related_name="conflicts")
    source = models.CharField(max_length=10, choices=BookingSource.choices)
    external_ref = models.CharField(max_length=200, blank=True)
    guest_name = models.CharField(max_length=200)
    check_in = models.DateTimeField()
    check_out = models.DateTimeField()
    clashes_with = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["check_in", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["property", "source", "external_ref"],
                condition=Q(resolved_at__isnull=True) & ~Q(external_ref=""),
                name="conflict_one_open_per_ref",
            )
        ]

    def __str__(self) -> str:
        return f"{self.guest_name} · {self.property} · {self.check_in:%Y-%m-%d} (conflict)"


class MessageKind(models.TextChoices):
    CODE_DELIVERY = "code_delivery", "Door codes"
    CODE_CHANGED = "code_changed", "Code changed"
    BACKUP_CODE = "backup_code", "Backup code"
    INSTRUCTIONS = "instructions", "Check-in instructions"


class MessageChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class MessageTemplate(models.Model):
    """A tenant's words for one kind of guest message on one channel, in one language; with a property it
    overrides the tenant's for that property. Placeholders: portal/message_templates.py."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="message_templates")
    property = models.ForeignKey(Property, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="message_templates")
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    language = models.CharField(max_length=8, default="en")
    subject = models.CharField(max_length=200, blank=True)  # email only
    body = models.TextField()

    objects = TenantManager()

    class Meta:
        ordering = ["kind", "channel", "language"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "channel", "language"], condition=Q(property=None),
                                    name="message_template_one_per_tenant"),
            models.UniqueConstraint(fields=["property", "kind", "channel", "language"],
                                    condition=Q(property__isnull=False), name="message_template_one_per_property"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.channel} · {self.language}"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    HELD = "held", "Held"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"


class Message(models.Model):
    """One message to a guest (DESIGN §3). The body is rendered when it is sent; what is kept has every
    PIN replaced by •••• (the guest's copy is the only one in clear). `automatic`: the one the schedule
    sends for (booking, kind, channel); staff's "Send now" and "Resend" add rows of their own."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="messages")
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    recipient = models.CharField(max_length=254)
    automatic = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    why_held = models.CharField(max_length=300, blank=True)
    subject = models.CharField(max_length=300, blank=True)  # redacted, as sent
    body = models.TextField(blank=True)  # redacted, as sent
    provider_id = models.CharField(max_length=100, blank=True)  # e.g. Twilio's message SID
    error = models.CharField(max_length=300, blank=True)  # our words, never the provider's body
    claimed_at = models.DateTimeField(null=True, blank=True)  # a sender took it (at most one send)
    checked_at = models.DateTimeField(null=True, blank=True)  # a held message: when its doors were last asked
    look_again_at = models.DateTimeField(null=True, blank=True)  # … and when the clock alone makes it worth asking
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "kind", "channel"],
                                    condition=Q(automatic=True) & ~Q(kind="code_changed"),
                                    name="message_one_automatic_per_kind_channel"),
            # A stay's PIN may change more than once; one change message waits at a time (it tells the latest).
            models.UniqueConstraint(fields=["booking", "channel"],
                                    condition=Q(automatic=True, kind="code_changed", status__in=["queued", "held"]),
                                    name="message_one_waiting_code_change_per_channel"),
        ]
        indexes = [
            models.Index(fields=["status"], condition=Q(status="held", automatic=True), name="message_held"),
            models.Index(fields=["provider_id"], condition=~Q(provider_id=""), name="message_provider_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient} ({self.status})"


class ApiKey(models.Model):
    """A tenant API key. Only a SHA-256 of the secret is stored; the key is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # An owner key reads as this owner: only the properties the membership owns.
    owner_membership = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )

    objects = TenantManager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A user's single-use recovery codes as a django-otp device, so a code verifies a session like the
    authenticator app does. Kept hashed: django-otp's own static tokens are stored in clear. The codes
    carry 80 random bits, so a plain SHA-256 is as good as a slow hash and lets every code be checked in
    one query."""

    def verify_token(self, token: str) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        from django.utils import timezone

        used = RecoveryCode.objects.filter(device=self, digest=recovery_code_digest(token),
                                           used_at__isnull=True).update(used_at=timezone.now())
        if used:
            self.throttle_reset(commit=True)
        else:
            self.throttle_increment(commit=True)
        return bool(used)

    def get_throttle_factor(self) -> int:
        return int(getattr(settings, "OTP_RECOVERY_THROTTLE_FACTOR", 2))


def recovery_code_digest(code: str) -> str:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normalized.encode()).hexdigest()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["device", "digest"])]

    def __str__(self) -> str:
        return f"recovery code #{self.pk} ({'used' if self.used_at else 'unused'})"
