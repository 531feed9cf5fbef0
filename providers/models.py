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
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_vendor_display()})"


class WebhookEvent(models.Model):
    provider_account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="webhook_events")
    vendor_event_id = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    payload = models.JSONField()
    headers = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True)
    matched_command = models.ForeignKey(
        "locks.LockCommand", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )
    matched_code = models.ForeignKey(
        "locks.AccessCode", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_account", "vendor_event_id"], name="webhook_event_unique_per_account"
            ),
        ]
        indexes = [
            models.Index(fields=["received_at"], condition=models.Q(processed_at__isnull=True), name="webhook_unprocessed")
        ]

    def __str__(self) -> str:
        return f"{self.provider_account.vendor} event {self.vendor_event_id}"
