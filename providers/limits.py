"""Vendor rate limits (DESIGN §4 "Vendor rate limits are token buckets shared by every worker"; VENDORS.md).

Pure data, like `providers/credentials.py`: which command actions each vendor counts, over which scope (one
device or one account), how many per period. The engine's buckets (`locks/ratelimits.py`) read this table;
a command over a limit waits for a token instead of being sent and refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from providers.models import Vendor

# Command actions as the engine names them (locks.models.CommandAction; providers imports nothing of locks).
CREATE, UPDATE, DELETE = "create", "update", "delete"
RELOAD_CODES, REMOVE_CODE = "reload_codes", "remove_code"


@dataclass(frozen=True)
class VendorLimit:
    name: str  # what is counted, in the operator's words: "code creates"
    actions: frozenset[str]
    per: Literal["device", "account"]  # a bucket per lock, or one for the whole provider account
    capacity: int  # tokens per period; 0 = no limit
    period_seconds: int = 60
    # An engine knob (locks/conf.py) that overrides `capacity`, for vendors whose limit is contractual.
    setting: str = ""

    def describe(self, capacity: int) -> str:
        scope = "per lock" if self.per == "device" else "per account"
        period = "a minute" if self.period_seconds == 60 else f"per {self.period_seconds} s"
        return f"{self.name}, {capacity} {period} {scope}"


VENDOR_LIMITS: dict[str, tuple[VendorLimit, ...]] = {
    # "Rate limits per device: create 10/min, update 10/min, delete 20/min" (rate-limits-and-guardrails.md).
    Vendor.SEAM: (
        VendorLimit("code creates", frozenset({CREATE}), "device", 10),
        VendorLimit("code updates", frozenset({UPDATE}), "device", 10),
        VendorLimit("code deletes", frozenset({DELETE, REMOVE_CODE}), "device", 20),
    ),
    # "20 executions/min per installed app": every device command counts; status reads are not commands.
    Vendor.SMARTTHINGS: (
        VendorLimit(
            "command executions", frozenset({CREATE, UPDATE, DELETE, REMOVE_CODE, RELOAD_CODES}), "account", 20
        ),
    ),
    # One operation at a time per smartlock, which the engine's one-command-in-flight rule already is.
    Vendor.NUKI: (),
    # Not published: set LOCKSTEP["SCHLAGE_COMMANDS_PER_MINUTE"] to what the subscription allows.
    Vendor.SCHLAGE: (
        VendorLimit(
            "commands", frozenset({CREATE, UPDATE, DELETE, REMOVE_CODE}), "account", 0,
            setting="SCHLAGE_COMMANDS_PER_MINUTE",
        ),
    ),
    Vendor.SIMULATOR: (),
}


def limits_for(vendor: str, action: str) -> list[VendorLimit]:
    """The limits a command of `action` on a `vendor` lock spends a token of."""
    return [limit for limit in VENDOR_LIMITS.get(vendor, ()) if action in limit.actions]
