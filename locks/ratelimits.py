"""Vendor rate limits (DESIGN §4 "Vendor rate limits are token buckets shared by every worker").

One bucket per vendor scope (a lock for Seam's per-device limits, an account for SmartThings' per-app
limit; the table is `providers/limits.py`), shared by every worker on every machine: in Redis when Redis is
configured (`settings.RATE_LIMIT_STORE`), else in a database row locked with SELECT … FOR UPDATE. The
dispatcher spends a token as it claims a command; a command that finds its bucket spent is not sent
(and refused) but waits, with `not_before` at the moment a token frees. A 429 drains the bucket
until the vendor's `Retry-After`, so every worker slows that scope down, not only the one refused.

Each token comes back exactly one period after it was spent (the bucket keeps the times it was spent, a
sliding window): a burst up to the limit goes at once, and no period ever holds more sends than the
vendor allows. A bucket that refills continuously would let twice the limit through in one minute
(a full burst, then the refill), which is what vendors count against. The clock is the caller's `now`,
so the engine's virtual time (`manage.py simulate`) is respected too.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.db import transaction

from locks.commands import command_claim, command_hold
from locks.conf import engine
from locks.models import CommandState, Lock, LockCommand, RateBucket
from providers.limits import VendorLimit, limits_for
from providers.models import Vendor

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class Bucket:
    key: str
    capacity: int
    period: float  # seconds
    label: str  # "Seam's rate limit (code creates, 10 a minute per lock)"


class BucketStore(Protocol):
    def take(self, bucket: Bucket, *, now: float) -> float | None:
        """Spend a token at `now` (epoch seconds): None when spent, else when the next one frees."""

    def drain(self, bucket: Bucket, *, until: float, pause: float) -> None:
        """No token before `until`, `pause` seconds from now (a 429 said so)."""


def _free_at(stamps: list[float], bucket: Bucket, *, now: float) -> float | None:
    """None when a token is free at `now`, else when one frees. `stamps` is sorted. Stamps are kept for two
    periods, not one: workers' clocks differ by milliseconds, and a stamp dropped by a worker slightly ahead
    must still count for one slightly behind."""
    window = [s for s in stamps if s > now - bucket.period]
    if len(window) < bucket.capacity:
        return None
    return window[len(window) - bucket.capacity] + bucket.period


class DatabaseStore:
    """A row per bucket; the row lock makes take-or-wait atomic across processes (SQLite: the write lock)."""

    def _locked(self, key: str) -> RateBucket:
        row = RateBucket.objects.select_for_update().filter(key=key).first()
        if row is None:
            RateBucket.objects.bulk_create([RateBucket(key=key)], ignore_conflicts=True)  # first use; may race
            row = RateBucket.objects.select_for_update().get(key=key)
        return row

    def take(self, bucket: Bucket, *, now: float) -> float | None:
        with transaction.atomic():
            row = self._locked(bucket.key)
            stamps = sorted(float(s) for s in row.stamps if float(s) > now - 2 * bucket.period)
            free_at = _free_at(stamps, bucket, now=now)
            if free_at is None:
                stamps.append(now)
            RateBucket.objects.filter(pk=row.pk).update(stamps=stamps)
        return free_at

    def drain(self, bucket: Bucket, *, until: float, pause: float) -> None:
        spent_at = until - bucket.period  # a token spent then comes back at `until`
        with transaction.atomic():
            row = self._locked(bucket.key)
            later = [float(s) for s in row.stamps if float(s) >= spent_at]
            stamps = later + [spent_at] * max(0, bucket.capacity - len(later))
            RateBucket.objects.filter(pk=row.pk).update(stamps=stamps)


# A sorted set of spend times per bucket; each script runs atomically in Redis.
_TAKE = """
local now, period, capacity = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 2 * period)
local count = redis.call('ZCOUNT', KEYS[1], '(' .. (now - period), '+inf')
if count < capacity then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(period) * 3)
  return false
end
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - period), '+inf', 'WITHSCORES', 'LIMIT',
                          count - capacity, 1)
return tostring(tonumber(oldest[2]) + period)
"""
_DRAIN = """
local spent_at = tonumber(ARGV[1]) - tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. spent_at)
for i = redis.call('ZCARD', KEYS[1]) + 1, tonumber(ARGV[3]) do
  redis.call('ZADD', KEYS[1], spent_at, ARGV[4] .. ':' .. i)
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5]) + 3 * tonumber(ARGV[2])))
"""


class RedisStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._take = client.register_script(_TAKE)
        self._drain = client.register_script(_DRAIN)

    def take(self, bucket: Bucket, *, now: float) -> float | None:
        key = f"lockstep:ratelimit:{bucket.key}"
        free_at: Any = self._take(keys=[key], args=[repr(now), repr(bucket.period), bucket.capacity,
                                                    uuid.uuid4().hex])
        return None if free_at is None else float(free_at)

    def drain(self, bucket: Bucket, *, until: float, pause: float) -> None:
        key = f"lockstep:ratelimit:{bucket.key}"
        self._drain(keys=[key], args=[repr(until), repr(bucket.period), bucket.capacity, uuid.uuid4().hex,
                                      repr(pause)])


@cache
def _redis_store(url: str) -> RedisStore:
    import redis

    return RedisStore(redis.Redis.from_url(url, socket_timeout=5))


def bucket_store() -> BucketStore:
    if getattr(settings, "RATE_LIMIT_STORE", "database") == "redis":
        return _redis_store(settings.REDIS_URL)
    return DatabaseStore()


def _capacity(limit: VendorLimit) -> int:
    return int(getattr(engine(), limit.setting)) if limit.setting else limit.capacity


def buckets_for(*, lock_id: int, action: str) -> list[Bucket]:
    """The buckets a command of `action` on this lock spends a token of (none for most vendors)."""
    vendor, account_id, device_id = (
        Lock.objects.filter(pk=lock_id).values_list("provider_account__vendor", "provider_account_id",
                                                     "vendor_device_id").get()
    )
    buckets = []
    for limit in limits_for(vendor, action):
        capacity = _capacity(limit)
        if capacity <= 0:
            continue
        key = f"{vendor}:{account_id}:{device_id if limit.per == 'device' else '*'}:{limit.name}"
        if len(key) > 200:
            key = hashlib.sha256(key.encode()).hexdigest()
        label = f"{Vendor(vendor).label}'s rate limit ({limit.describe(capacity)})"
        buckets.append(Bucket(key=key, capacity=capacity, period=float(limit.period_seconds), label=label))
    return buckets


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class _OverLimit(Exception):
    def __init__(self, until: datetime, why: str) -> None:
        super().__init__(why)
        self.until, self.why = until, why


def command_claim_within_limits(*, command: LockCommand, now: datetime) -> bool:
    """Claim `command` (queued → sent) and spend a token of every limit it counts against, together.

    A bucket found spent undoes the claim: the command waits (`not_before`, `held_by`) until a token
    frees, and is not sent. Tokens are spent only by a claim that holds, never by a dispatcher that lost
    the race for the lock, so racing workers do not burn the vendor's allowance between them."""
    try:
        with transaction.atomic():
            if not command_claim(command=command, now=now):
                return False
            store = bucket_store()
            for bucket in buckets_for(lock_id=command.lock_id, action=command.action):
                free_at = store.take(bucket, now=now.timestamp())
                if free_at is not None:
                    raise _OverLimit(max(_moment(free_at), now), bucket.label)
    except _OverLimit as over:
        command.state, command.sent_at = CommandState.QUEUED, None  # as the rollback left the row
        command_hold(command=command, until=over.until, why=over.why, now=now)
        return False
    return True


def command_rate_limited(*, command: LockCommand, retry_after: float | None, now: datetime) -> None:
    """The vendor answered 429: no worker spends a token of this scope before its `Retry-After`."""
    pause = retry_after if retry_after else engine().RATE_LIMITED_PAUSE_SECONDS
    until = now + timedelta(seconds=pause)
    store = bucket_store()
    for bucket in buckets_for(lock_id=command.lock_id, action=command.action):
        store.drain(bucket, until=until.timestamp(), pause=pause)
