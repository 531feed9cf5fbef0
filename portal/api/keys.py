"""Tenant API keys: created by admins, shown once, stored as a SHA-256, revocable.

A key reads ``lsk_<prefix>_<secret>``. The prefix finds the row; only the hash of the whole key is stored,
so a database dump does not hand out working keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from locks.activity import activity_record
from portal.models import ApiKey, Membership, Role, Tenant

KEY_SCHEME = "lsk"
# last_used_at is a hint for admins, not an audit trail: write it at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    role: str,
    created_by: User | None,
    now: datetime,
    owner_membership: Membership | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored and cannot be shown again."""
    if role not in Role.values:
        raise ValidationError({"role": "Unknown role."})
    if role == Role.OWNER:
        if owner_membership is None or owner_membership.tenant_id != tenant.pk or owner_membership.role != Role.OWNER:
            raise ValidationError({"owner_membership": "An owner key must act for one of this tenant's owners."})
    else:
        owner_membership = None
    if not name.strip():
        raise ValidationError({"name": "Give the key a name, e.g. the system that will use it."})
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name.strip(),
        prefix=prefix,
        key_hash=_hash(raw_key),
        role=role,
        created_by=created_by,
        owner_membership=owner_membership,
    )
    activity_record(tenant_id=tenant.pk, actor=created_by, verb="api_key.created",
                    message=f"API key “{api_key.name}” ({prefix}…, {role}) created",
                    data={"api_key_id": api_key.pk}, now=now)
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User | None, now: datetime) -> ApiKey:
    # Conditional update: revoking twice keeps the first time and writes one Activity row.
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now):
        activity_record(tenant_id=api_key.tenant_id, actor=actor, verb="api_key.revoked",
                        message=f"API key “{api_key.name}” ({api_key.prefix}…) revoked",
                        data={"api_key_id": api_key.pk}, now=now)
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, raw_key: str, now: datetime) -> ApiKey | None:
    """The active key matching ``raw_key``, or None for a malformed, unknown or revoked key."""
    scheme, _, rest = raw_key.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not prefix or not secret:
        return None
    api_key = (
        ApiKey.objects.select_related("tenant", "owner_membership")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _hash(raw_key)):
        return None
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
