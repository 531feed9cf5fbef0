"""Vendor → adapter class, imported on first use so one broken adapter cannot break the others."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.base import Provider
    from providers.models import ProviderAccount

ADAPTERS: dict[str, str] = {
    "seam": "providers.seam.SeamProvider",
    "smartthings": "providers.smartthings.SmartThingsProvider",
    "nuki": "providers.nuki.NukiProvider",
    "schlage": "providers.schlage.SchlageProvider",
    "simulator": "providers.simulator.SimulatorProvider",
}


def provider_class(vendor: str) -> type[Provider]:
    try:
        dotted = ADAPTERS[vendor]
    except KeyError as exc:
        raise LookupError(f"no adapter for vendor {vendor!r}") from exc
    module_name, class_name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)


def get_provider(account: ProviderAccount) -> Provider:
    return provider_class(account.vendor)(account)
