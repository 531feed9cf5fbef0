"""Every engine knob in one place (DESIGN §4, §6), with its default, read from `settings.LOCKSTEP`.

A bad value fails loudly at start (`ImproperlyConfigured`), not at 3 a.m. in a worker. Read the knobs
through `engine()`, which reads settings at call time so tests can override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class EngineSettings:
    # Natively scheduling locks get a code this long before its window; the lock enforces the window.
    NATIVE_PRELOAD_HOURS: int = 72
    # Other locks are programmed this long before the window starts ...
    JUST_IN_TIME_MINUTES: int = 60
    # ... or earlier when the lock has shown failures or slow answers (DESIGN §4 "Adaptive lead"; locks/lead.py),
    # never earlier than the tenant's maximum early exposure. The lead is judged on the lock's last
    # LEAD_RECORD_COMMANDS finished writes, planned so that a code reaches the lock in time unless more
    # failures come in a row than the lock's failure rate makes likelier than LEAD_MISS_CHANCE, and
    # rounded up to LEAD_STEP_MINUTES (a small wobble in latency does not move every code of the lock).
    LEAD_RECORD_COMMANDS: int = 20
    LEAD_MISS_CHANCE: float = 0.01
    LEAD_STEP_MINUTES: int = 15
    # A command `sent` longer than this is asked about by the sweeper ...
    SWEEP_STALE_MINUTES: int = 5
    # ... and past this it has timed out.
    SWEEP_HARD_LIMIT_MINUTES: int = 30
    # Between the two, a command still pending is asked again after its age times this factor (5, 10, 20
    # minutes old, then once at the hard limit), not every minute: status polls are vendor calls too.
    SWEEP_POLL_BACKOFF: float = 2.0
    # Codes starting within this many hours that are not on their lock need someone's attention.
    ATTENTION_HOURS: int = 24
    # A code still not on the lock this long after its programming time is alerted as late.
    LATE_ALERT_MINUTES: int = 15
    # A code still on the lock (or not confirmed removed) this long after its end gets an `overstay` issue.
    OVERSTAY_GRACE_MINUTES: int = 5
    # How long each vendor normally takes to confirm a change (seconds): a command younger than this is
    # on its way, not late. Vendors not listed get DEFAULT_LATENCY_SECONDS.
    NORMAL_LATENCY_SECONDS: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(
        {"seam": 60, "smartthings": 45, "nuki": 60, "schlage": 600, "simulator": 30}
    ))
    DEFAULT_LATENCY_SECONDS: int = 60
    # A create that does not fit the lock's capacity is looked at again this often (a freed slot is
    # taken within this time; no busy loop in between).
    SLOTS_RECHECK_MINUTES: int = 1
    # A failed code stays in the attention queue this long past its end (a failed delete leaves a PIN).
    FAILED_SHOWN_DAYS: int = 7
    # Below this battery level (0–1) a lock gets a low_battery issue.
    LOW_BATTERY_LEVEL: float = 0.2
    # Transient failures are retried after these delays (minutes); one more failure and the code fails.
    BACKOFF_MINUTES: tuple[int, ...] = (1, 2, 5, 15, 30, 60)
    # Fresh PINs tried after duplicate-PIN clashes before staff are asked (a lock calling every PIN a
    # duplicate is broken, not crowded).
    MAX_DUPLICATE_REGENERATIONS: int = 3
    # Every lock is read back (reconciled) at least this often.
    RECONCILE_EVERY_HOURS: int = 6
    # Commands one dispatcher run sends on one lock before yielding to the others.
    MAX_COMMANDS_PER_RUN: int = 50
    # OAuth tokens (locks/tokens.py): refreshed before a vendor call when they expire within this many
    # seconds, and by the 10-minute task when within this many minutes (longer than the task's period).
    TOKEN_REFRESH_MARGIN_SECONDS: int = 120
    TOKEN_REFRESH_AHEAD_MINUTES: int = 20
    # A stored webhook event still unprocessed this long after it arrived (or after the sweep last
    # enqueued it) is enqueued again: its task died with a worker (DESIGN §4, §6).
    EVENT_REPROCESS_AFTER_SECONDS: int = 120
    # Rows one tick step or sweep handles per run; the next run continues.
    TICK_BATCH: int = 500
    SWEEP_BATCH: int = 200
    # Schlage publishes no rate limit: commands per minute per account the subscription allows (0 = none).
    SCHLAGE_COMMANDS_PER_MINUTE: int = 0
    # A 429 without Retry-After slows its scope down for this long.
    RATE_LIMITED_PAUSE_SECONDS: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.LEAD_MISS_CHANCE < 1:
            raise ImproperlyConfigured("LOCKSTEP['LEAD_MISS_CHANCE'] must be between 0 and 1")
        if self.SWEEP_POLL_BACKOFF < 1:
            raise ImproperlyConfigured("LOCKSTEP['SWEEP_POLL_BACKOFF'] must be at least 1")
        if self.LEAD_RECORD_COMMANDS < 1 or self.LEAD_STEP_MINUTES < 1:
            raise ImproperlyConfigured("LOCKSTEP['LEAD_RECORD_COMMANDS'] and ['LEAD_STEP_MINUTES'] must be at least 1")

    @property
    def attention_window(self) -> timedelta:
        return timedelta(hours=self.ATTENTION_HOURS)

    @property
    def reconcile_every(self) -> timedelta:
        return timedelta(hours=self.RECONCILE_EVERY_HOURS)

    @property
    def overstay_grace(self) -> timedelta:
        return timedelta(minutes=self.OVERSTAY_GRACE_MINUTES)

    def normal_latency(self, vendor: str) -> timedelta:
        return timedelta(seconds=self.NORMAL_LATENCY_SECONDS.get(vendor, self.DEFAULT_LATENCY_SECONDS))


def _coerce(name: str, default: Any, value: Any) -> Any:
    try:
        if isinstance(default, Mapping):
            # Per-vendor tables: the configured entries override the defaults, the others stay.
            merged = {**default, **{str(key): int(item) for key, item in dict(value).items()}}
            if any(item < 0 for item in merged.values()):
                raise ValueError("negative")
            return MappingProxyType(merged)
        if isinstance(default, tuple):
            coerced: Any = tuple(int(item) for item in value)
            if not coerced:
                raise ValueError("empty")
            return coerced
        coerced = type(default)(value)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"LOCKSTEP[{name!r}] = {value!r} is not a valid {type(default).__name__}") from exc
    if coerced < 0:
        raise ImproperlyConfigured(f"LOCKSTEP[{name!r}] must not be negative (got {value!r})")
    return coerced


def engine() -> EngineSettings:
    """The engine's settings: the defaults above, overridden by `settings.LOCKSTEP`."""
    configured: dict[str, Any] = dict(getattr(settings, "LOCKSTEP", {}))
    known = {f.name: (f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default)
             for f in fields(EngineSettings)}
    unknown = set(configured) - set(known)
    if unknown:
        raise ImproperlyConfigured(f"Unknown LOCKSTEP setting(s): {', '.join(sorted(unknown))}")
    return EngineSettings(**{name: _coerce(name, known[name], value) for name, value in configured.items()})
