from django.contrib import admin

from providers.models import ProviderAccount, WebhookEvent


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "vendor", "tenant", "status", "last_checked_at"]
    exclude = ["credentials", "webhook_secret"]  # write-only: set them in the portal's settings pages


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["vendor_event_id", "provider_account", "received_at", "processed_at", "result"]
