from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from portal.encryption import EncryptedTextField, fingerprint
from portal.tenancy import TenantManager


class Lock(models.Model):
    tenant = models.ForeignKey("portal.Tenant", on_delete=models.CASCADE, related_name="locks")
    # NULL: unassigned (imported, not yet placed, or no longer managed); such a lock gets no guest codes.
    property = models.ForeignKey(
        "portal.Property", null=True, blank=True, on_delete=models.SET_NULL, related_name="locks"
    )
    provider_account = models.ForeignKey(
        "providers.ProviderAccount", on_delete=models.PROTECT, related_name="locks"
    )
    vendor_device_id = models.CharField(max_length=200)
    name = models.CharField(max_length=120)
    model = models.CharField(max_length=120, blank=True)
    # {"code_lengths": [4, 5, 6], "max_active_codes": 30, "constraints": ["no_zeros", ...],
    #  "name_max_length": 20}
    requirements = models.JSONField(default=dict, blank=True)
    native_scheduling = models.BooleanField(default=False)
    pin_readable = models.BooleanField(default=False)
    online = models.BooleanField(default=True)
    battery_level = models.FloatField(null=True, blank=True, help_text="0.0–1.0")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    reconcile_requested = models.BooleanField(default=False)
    # Adaptive lead (DESIGN §4, locks/lead.py) of a lock that does not schedule codes itself: minutes before
    # a code's start it is programmed, learnt from the lock's recent commands whenever one finishes (NULL:
    # the standard just-in-time lead), and what it was learnt from, for the lock page.
    lead_minutes = models.PositiveIntegerField(null=True, blank=True)
    lead_basis = models.JSONField(default=dict, blank=True)
    # False once staff stop managing the lock: hidden, never reconciled, its last deletes still go out.
    managed = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["property__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider_account", "vendor_device_id"], name="lock_unique_device"),
        ]

    def __str__(self) -> str:
        return self.name


class CodeStatus(models.TextChoices):
    UNSET = "unset", "Unset"
    SETTING = "setting", "Setting"
    SET = "set", "Set"
    REMOVING = "removing", "Removing"
    REMOVED = "removed", "Removed"
    FAILED = "failed", "Failed"


LIVE_CODE_STATUSES = (CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET, CodeStatus.REMOVING)
# Every status but `removed`: what the pages list. Written as an IN list, not `exclude(status=removed)`, so a
# lock's listing rides the (lock, status) index instead of reading its whole history of removed codes.
SHOWN_CODE_STATUSES = (*LIVE_CODE_STATUSES, CodeStatus.FAILED)


class CodePurpose(models.TextChoices):
    GUEST = "guest", "Guest"
    CLEANER = "cleaner", "Cleaner"
    MAINTENANCE = "maintenance", "Maintenance"
    OWNER = "owner", "Owner"
    STAFF = "staff", "Staff"
    TURNOVER = "turnover", "Turnover"
    BACKUP = "backup", "Backup"


# People who are not guests: staff give them codes by hand (locks.people, DESIGN §3 AccessCode purposes).
PEOPLE_PURPOSES = (CodePurpose.CLEANER, CodePurpose.MAINTENANCE, CodePurpose.OWNER, CodePurpose.STAFF)
PEOPLE_PURPOSE_CHOICES = [(purpose.value, purpose.label) for purpose in PEOPLE_PURPOSES]


class CodeType(models.TextChoices):
    TIME_BOUND = "time_bound", "Time-bound"
    ONGOING = "ongoing", "Ongoing"


class Verification(models.TextChoices):
    NONE = "none", "Not verified"
    VENDOR_ACK = "vendor_ack", "Vendor acknowledged"
    READ_BACK = "read_back", "Read back from the lock"


class AccessCode(models.Model):
    """What *should* be on a lock. Commands get it there; the lock's own report is the truth."""

    tenant = models.ForeignKey("portal.Tenant", on_delete=models.CASCADE, related_name="access_codes")
    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="access_codes")
    booking = models.ForeignKey(
        "portal.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="access_codes"
    )
    purpose = models.CharField(max_length=12, choices=CodePurpose.choices, default=CodePurpose.GUEST)
    # Who the code is for when it is not a guest's (the lock's `name` may be cut to fit the lock).
    holder_name = models.CharField(max_length=120, blank=True)
    code_type = models.CharField(max_length=12, choices=CodeType.choices, default=CodeType.TIME_BOUND)
    name = models.CharField(max_length=64, help_text="The name as shown on the lock.")
    pin = EncryptedTextField(blank=True)
    pin_fingerprint = models.CharField(max_length=64, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    program_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=CodeStatus.choices, default=CodeStatus.UNSET)
    is_scheduled_on_device = models.BooleanField(default=False)
    verification = models.CharField(max_length=12, choices=Verification.choices, default=Verification.NONE)
    vendor_code_ref = models.CharField(max_length=200, blank=True)
    common_code_key = models.CharField(max_length=64, blank=True)
    guest_notified = models.BooleanField(default=False)
    # The first time the lock reported this code opening the door (locks/arrivals.py).
    first_used_at = models.DateTimeField(null=True, blank=True)
    # Taken off the lock only until its (moved) window comes near again: a confirmed delete puts it back to
    # `unset`, and the tick programs it at `program_at` (DESIGN §4 "Windows are a security boundary").
    comes_back = models.BooleanField(default=False)
    # A new PIN for a guest who knows the old one goes on beside it (locks/pin_change.py): this code replaces
    # `replaces`, which keeps working until the guest has been told the new PIN, and is removed then.
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="replacements")
    # When a guest who knew this code's PIN got a new one (in place or as a replacement): they are owed a
    # `code_changed` message (portal/messages.py) until this code's `guest_notified` says they were told.
    pin_changed_at = models.DateTimeField(null=True, blank=True)
    last_reason = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(starts_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="code_ends_after_start",
            ),
            # No two live codes on one lock share a PIN (guest, staff and backup alike).
            models.UniqueConstraint(
                fields=["lock", "pin_fingerprint"],
                condition=Q(status__in=LIVE_CODE_STATUSES) & ~Q(pin_fingerprint=""),
                name="code_unique_live_pin_per_lock",
            ),
        ]
        indexes = [
            # tick: codes due to program
            models.Index(fields=["program_at"], condition=Q(status=CodeStatus.UNSET), name="code_due_program"),
            # tick: codes due to remove
            models.Index(
                fields=["ends_at"],
                condition=Q(status__in=[CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.SET]),
                name="code_due_remove",
            ),
            # tick: codes that may still be on the lock after their end (overstay)
            models.Index(
                fields=["ends_at"],
                condition=Q(status__in=[CodeStatus.REMOVING, CodeStatus.FAILED]),
                name="code_may_overstay",
            ),
            models.Index(fields=["lock", "status"]),
            models.Index(fields=["tenant", "status", "starts_at"]),
            # messages: guests owed word of a new PIN (a handful at any time)
            models.Index(fields=["pin_changed_at"], condition=Q(pin_changed_at__isnull=False, guest_notified=False),
                         name="code_pin_change_untold"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.lock}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The fingerprint is derived from the PIN; keep them together whatever the caller updates.
        self.pin_fingerprint = fingerprint(self.pin) if self.pin else ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "pin" in update_fields:
            kwargs["update_fields"] = {*update_fields, "pin_fingerprint"}
        super().save(*args, **kwargs)


class CommandAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    READ_CODES = "read_codes", "Read codes"
    RELOAD_CODES = "reload_codes", "Reload codes"
    DELETE_ALL = "delete_all", "Delete all codes"
    REMOVE_CODE = "remove_code", "Remove a code"


class CommandState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    SUPERSEDED = "superseded", "Superseded"
    CANCELLED = "cancelled", "Cancelled"


class LockCommand(models.Model):
    tenant = models.ForeignKey("portal.Tenant", on_delete=models.CASCADE, related_name="lock_commands")
    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="commands")
    access_code = models.ForeignKey(
        AccessCode, null=True, blank=True, on_delete=models.CASCADE, related_name="commands"
    )
    action = models.CharField(max_length=12, choices=CommandAction.choices)
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.QUEUED)
    attempt = models.PositiveSmallIntegerField(default=1)
    not_before = models.DateTimeField(null=True, blank=True)
    vendor_ref = models.CharField(max_length=200, blank=True)
    # Lock-wide work on one code the lock holds that is not (or no longer) one of ours: its vendor ref.
    target_ref = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # While sent: when the sweeper next asks the vendor about it (DESIGN §4 "The sweeper"; backoff in
    # locks/sweep.py). NULL for commands sent before this was recorded: they are asked once stale.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=40, blank=True)
    vendor_detail = models.TextField(blank=True)
    request_summary = models.JSONField(default=dict, blank=True)
    # A queued command held back by a vendor rate limit (locks/ratelimits.py): which limit, e.g. "Seam's
    # rate limit (code creates, 10 a minute per device)"; `not_before` says until when. Cleared on claim.
    held_by = models.CharField(max_length=120, blank=True)
    # What the command is about to send, recorded when it is claimed (DESIGN §4): events are correlated
    # and outcomes judged by these, never by the code's latest desire nor by an answer still on its way.
    sent_code_ref = models.CharField(max_length=200, blank=True)  # slot / vendor code ref, when known
    sent_name = models.CharField(max_length=64, blank=True)
    sent_pin_fingerprint = models.CharField(max_length=64, blank=True)
    sent_starts_at = models.DateTimeField(null=True, blank=True)
    sent_ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            # One command in flight per lock: the database says so, not our hopes.
            models.UniqueConstraint(
                fields=["lock"], condition=Q(state=CommandState.SENT), name="command_one_in_flight_per_lock"
            ),
        ]
        indexes = [
            models.Index(fields=["sent_at"], condition=Q(state=CommandState.SENT), name="command_sent_since"),
            models.Index(fields=["next_poll_at"], condition=Q(state=CommandState.SENT), name="command_poll_due"),
            # The lock's recent record (locks/lead.py): its last finished commands, newest first.
            models.Index(fields=["lock", "-id"], name="command_recent_per_lock"),
            models.Index(
                fields=["lock", "id"], condition=Q(state=CommandState.QUEUED), name="command_queue_per_lock"
            ),
            models.Index(fields=["vendor_ref"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.pk} on {self.lock_id} ({self.state})"

    @property
    def has_claim_record(self) -> bool:
        """False for a command claimed before claims were recorded (or not claimed yet)."""
        return bool(self.sent_name or self.sent_pin_fingerprint or self.sent_code_ref)


class IssueStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


class IssueKind(models.TextChoices):
    COMMAND_TIMEOUT = "command_timeout", "Command timed out"
    NACK = "nack", "Lock did not acknowledge"
    DUPLICATE_PIN = "duplicate_pin", "Duplicate PIN"
    DESYNC = "desync", "Lock and vendor disagree"
    USER_NOT_FOUND = "user_not_found", "User not found in the device"
    SCHEDULE_INVALID = "schedule_invalid", "Schedule parameters are not valid"
    UNRECOGNIZED_JOB_STATE = "unrecognized_job_state", "Unrecognized job state"
    SLOTS_FULL = "slots_full", "No free code slots"
    INVALID_PIN = "invalid_pin", "PIN rejected by the lock"
    DEVICE_OFFLINE = "device_offline", "Lock offline"
    LOW_BATTERY = "low_battery", "Low battery"
    BUSY = "busy", "Lock busy"
    RATE_LIMITED = "rate_limited", "Rate limited"
    AUTH_FAILED = "auth_failed", "Vendor credentials rejected"
    UNMANAGED_CODE = "unmanaged_code", "Code on the lock not managed by Lockstep"
    VENDOR_ERROR = "vendor_error", "Vendor error"
    KEYPAD_DISCONNECTED = "keypad_disconnected", "Keypad disconnected"
    DEVICE_TAMPERED = "device_tampered", "Lock reports tampering"
    THIRD_PARTY_INTEGRATION = "third_party_integration", "Another integration manages the lock"
    SUBSCRIPTION_REQUIRED = "subscription_required", "Vendor subscription required"
    OVERSTAY = "overstay", "Still on the lock after check-out"
    PIN_SPLIT = "pin_split", "Different PINs on the doors"
    GUEST_REPORTS_CODE_NOT_WORKING = "guest_reports_code_not_working", "Guest says the code does not work"
    NO_ENTRY = "no_entry", "Guest has not entered"
    GUEST_NOT_TOLD = "guest_not_told", "Guest not told their code"


class LockIssue(models.Model):
    tenant = models.ForeignKey("portal.Tenant", on_delete=models.CASCADE, related_name="lock_issues")
    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="issues")
    access_code = models.ForeignKey(
        AccessCode, null=True, blank=True, on_delete=models.CASCADE, related_name="issues"
    )
    command = models.ForeignKey(
        LockCommand, null=True, blank=True, on_delete=models.SET_NULL, related_name="issues"
    )
    kind = models.CharField(max_length=30, choices=IssueKind.choices)
    status = models.CharField(max_length=10, choices=IssueStatus.choices, default=IssueStatus.OPEN)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=1)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            # At most one open issue per (lock, code, kind); a lock-wide issue has no code, so NULL is
            # folded to 0 to make it count (NULLs are otherwise distinct in a unique index).
            models.UniqueConstraint(
                F("lock"),
                Coalesce("access_code", 0),
                F("kind"),
                condition=Q(status=IssueStatus.OPEN),
                name="issue_one_open_per_lock_code_kind",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.lock}"


# Activity verbs of what happened at the door: a guest's first entry, a wrong code tried (locks/arrivals.py).
DOOR_EVENT_VERBS = ("code.first_used", "lock.wrong_code")


class Activity(models.Model):
    """Append-only history: every code/command transition, webhook match and user action."""

    tenant = models.ForeignKey("portal.Tenant", on_delete=models.CASCADE, related_name="activities")
    lock = models.ForeignKey(Lock, null=True, blank=True, on_delete=models.CASCADE, related_name="activities")
    access_code = models.ForeignKey(
        AccessCode, null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    command = models.ForeignKey(
        LockCommand, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    booking = models.ForeignKey(
        "portal.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    verb = models.CharField(max_length=60)  # e.g. "code.status", "command.sent", "pin.revealed"
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activities"
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["booking", "-created_at"]),
            models.Index(fields=["lock", "-created_at"]),
            # What happened at the door is a handful of rows among a lock's years of history: the lock page
            # asks for its last few without reading the rest (bench: pages, 25 ms of a 45 ms page).
            models.Index(fields=["lock", "-created_at"], condition=Q(verb__in=DOOR_EVENT_VERBS),
                         name="activity_door_events"),
        ]

    def __str__(self) -> str:
        return self.message


class RateBucket(models.Model):
    """One vendor rate-limit bucket (locks/ratelimits.py) when no Redis is configured: the times (epoch
    seconds) its tokens were spent within the last period. Not tenant data: a key names a vendor scope."""

    key = models.CharField(max_length=255, unique=True)
    stamps = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return self.key
