from __future__ import annotations

import uuid

from django.db import models

from portal.encryption import EncryptedJSONField, EncryptedTextField
from portal.tenancy import TenantManager


class Vendor(models.TextChoices):
    SEAM = "seam", "Seam"
    SMARTTHINGS = "smartthings", "SmartThings"
    NUKI = "nuki", "Nuki"
    SCHLAGE = "schlage", "Schlage"
    SIMULATOR = "simulator", "Simulator"


class AccountStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked"
    OK = "ok", "Working"
    AUTH_FAILED = "auth_failed", "Credentials rejected"
    ERROR = "error", "Vendor unreachable"


class ProviderAccount(models.Model):
    """A tenant's connection to a vendor cloud. Credentials are write-only everywhere."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey("portal.Tenant", on_delete=models.CASCADE, related_name="provider_accounts")
    vendor = models.CharField(max_length=20, choices=Vendor.choices)
    name = models.CharField(max_length=120)
    credentials = EncryptedJSONField(default=dict, blank=True)
    webhook_secret = EncryptedTextField(blank=True)
    status = models.CharField(max_length=12, choices=AccountStatus.choices, default=AccountStatus.UNKNOWN)
    status_detail = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # OAuth accounts: when the stored access token expires (not secret; the refresh task selects on it).
    token_expires_at = models.DateTimeField(null=True, blank=True)
    # SmartThings: the event subscriptions the SmartApp made for this account (shown on the account page).
    subscriptions = models.JSONField(default=list, blank=True)
    # Verified deliveries that yielded no event (a shape we do not read): counted and alerted, never
    # silently dropped (DESIGN §4). `unparsed_alerted_at` is claimed by the alert, once a day at most.
    unparsed_deliveries = models.PositiveIntegerField(default=0)
    last_unparsed_at = models.DateTimeField(null=True, blank=True)
    unparsed_alerted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["token_expires_at"], condition=models.Q(token_expires_at__isnull=False),
                         name="account_token_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_vendor_display()})"


class WebhookEvent(models.Model):
    # Indexed through the unique (account, event id) pair it leads; intake writes every index an event has
    # (DESIGN §12), so none is kept twice, and the two links set by processing are indexed only once set.
    provider_account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="webhook_events",
                                         db_index=False)
    vendor_event_id = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    payload = models.JSONField()
    headers = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When the sweep last enqueued it again (its first task died with a worker); spaces the retries.
    requeued_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True)
    matched_command = models.ForeignKey(
        "locks.LockCommand", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events",
        db_index=False,
    )
    matched_code = models.ForeignKey(
        "locks.AccessCode", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events",
        db_index=False,
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_account", "vendor_event_id"], name="webhook_event_unique_per_account"
            ),
        ]
        indexes = [
            models.Index(fields=["received_at"], condition=models.Q(processed_at__isnull=True), name="webhook_unprocessed"),
            models.Index(fields=["matched_command"], condition=models.Q(matched_command__isnull=False),
                         name="webhook_matched_command"),
            models.Index(fields=["matched_code"], condition=models.Q(matched_code__isnull=False),
                         name="webhook_matched_code"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_account.vendor} event {self.vendor_event_id}"


class SimulatorProfile(models.TextChoices):
    SEAM = "seam", "Seam-like (native scheduling)"
    SMARTTHINGS = "smartthings", "SmartThings-like (slots)"
    NUKI = "nuki", "Nuki-like (6 digits, 423 busy)"
    SCHLAGE = "schlage", "Schlage-like (commands, fixed length)"


class SimulatedDevice(models.Model):
    """A virtual lock behind the simulator provider: its vendor cloud and the lock itself, in our database.

    `codes` is what the lock really holds ({vendor code ref: {pin, name, starts_at, ends_at, status,
    code_id, external}}); `operations` are the vendor-side operations in flight or recently finished;
    `outbox` the webhook deliveries not yet made. `counter` numbers the random draws so a seeded run
    repeats exactly; `next_due_at` (and `next_arrival_at`) let the advance task skip devices with nothing to do.
    """

    tenant = models.ForeignKey("portal.Tenant", on_delete=models.CASCADE, related_name="simulated_devices")
    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="simulated_devices")
    device_id = models.CharField(max_length=200)
    name = models.CharField(max_length=120, blank=True)
    profile = models.CharField(max_length=20, choices=SimulatorProfile.choices)
    requirements = models.JSONField(default=dict, blank=True)
    faults = models.JSONField(default=dict, blank=True)
    online = models.BooleanField(default=True)
    battery_level = models.FloatField(default=0.9)
    codes = models.JSONField(default=dict, blank=True)
    operations = models.JSONField(default=list, blank=True)
    outbox = models.JSONField(default=list, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    counter = models.PositiveIntegerField(default=0)
    serial = models.PositiveIntegerField(default=0)
    next_due_at = models.DateTimeField(null=True, blank=True)
    # The next guest due to "arrive" (type a code the lock holds): the advance takes it with whatever else
    # is due, and a virtual clock does not stop for it.
    next_arrival_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["device_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "device_id"], name="simulated_device_unique_per_account"),
        ]
        indexes = [models.Index(fields=["next_due_at"], name="simulated_device_due")]

    def __str__(self) -> str:
        return f"{self.device_id} ({self.profile})"
