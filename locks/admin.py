from django.contrib import admin

from locks.models import AccessCode, Activity, Lock, LockCommand, LockIssue


@admin.register(Lock)
class LockAdmin(admin.ModelAdmin):
    list_display = ["name", "property", "tenant", "online", "battery_level", "last_reconciled_at"]
    list_filter = ["tenant", "online"]


@admin.register(AccessCode)
class AccessCodeAdmin(admin.ModelAdmin):
    list_display = ["name", "lock", "status", "starts_at", "ends_at"]
    list_filter = ["tenant", "status"]
    exclude = ["pin", "pin_fingerprint"]  # PINs are revealed in the portal, with an audit trail


@admin.register(LockCommand)
class LockCommandAdmin(admin.ModelAdmin):
    list_display = ["id", "lock", "action", "state", "attempt", "reason", "sent_at"]
    list_filter = ["state", "action"]


@admin.register(LockIssue)
class LockIssueAdmin(admin.ModelAdmin):
    list_display = ["kind", "lock", "status", "occurrences", "last_seen_at"]
    list_filter = ["status", "kind"]


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["created_at", "verb", "message", "actor"]
    list_filter = ["tenant", "verb"]
