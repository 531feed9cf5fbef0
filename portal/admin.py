import contextlib

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import ApiKey, Booking, Membership, Message, MessageTemplate, Property, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["tenant", "role"]


@admin.register(Property)
class PropertyAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "timezone"]
    list_filter = ["tenant"]


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ["guest_name", "property", "check_in", "check_out", "status", "source"]
    list_filter = ["tenant", "status", "source"]
    search_fields = ["guest_name", "external_ref"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "prefix", "role", "revoked_at"]
    readonly_fields = ["prefix", "key_hash"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["tenant", "property", "kind", "channel", "language"]
    list_filter = ["tenant", "kind", "channel"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Read-only: what was sent (PINs masked) and how it went; messages are sent by the portal only."""

    list_display = ["booking", "kind", "channel", "status", "sent_at"]
    list_filter = ["tenant", "kind", "channel", "status"]

    def has_add_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False


# django-otp's own admin shows the TOTP secret (and a QR code of it): no page does, but the setup page.
with contextlib.suppress(NotRegistered):
    admin.site.unregister(TOTPDevice)
