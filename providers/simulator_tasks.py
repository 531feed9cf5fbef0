"""django-q2 entry point that lets simulated clouds catch up with the wall clock (every minute)."""

from __future__ import annotations

from django.utils import timezone

from providers.models import ProviderAccount, SimulatedDevice, Vendor
from providers.simulator import simulator_advance


def advance_all() -> int:
    """Advance every simulator account that has due work; returns the webhooks delivered."""
    now = timezone.now()
    account_ids = (
        SimulatedDevice.objects.filter(next_due_at__lte=now).values_list("account_id", flat=True).distinct()
    )
    delivered = 0
    for account in ProviderAccount.objects.filter(pk__in=list(account_ids), vendor=Vendor.SIMULATOR):
        delivered += simulator_advance(account=account, now=now)
    return delivered
