from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from providers.models import ProviderAccount

        post_save.connect(_forget_webhook_account, sender=ProviderAccount, dispatch_uid="webhook_account_forget")
        post_delete.connect(_forget_webhook_account, sender=ProviderAccount, dispatch_uid="webhook_account_forget_del")


def _forget_webhook_account(sender: type, instance: Any, **kwargs: Any) -> None:
    from providers.webhooks import webhook_account_forget

    webhook_account_forget(account_uuid=instance.uuid)
