"""Encryption at rest: MultiFernet over FIELD_ENCRYPTION_KEYS (first key encrypts, every key decrypts).

Secrets (vendor credentials, webhook secrets, PINs) are stored as Fernet tokens. A token that no key
can read raises instead of returning garbage. PIN uniqueness uses a keyed fingerprint, because equal
plaintexts give different Fernet tokens.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class DecryptionError(Exception):
    """A stored token could not be decrypted with any configured key."""


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_str(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_str(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


def rotate_token(token: str) -> str:
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


def fingerprint(value: str) -> str:
    """Keyed, deterministic digest: equal PINs give equal fingerprints, the PIN is not recoverable."""
    key = settings.PIN_FINGERPRINT_KEY.encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """A text value stored as a Fernet token; empty strings stay empty."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:  # None or ""
            return value
        return decrypt_str(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt_str(str(value))


class EncryptedJSONField(models.TextField):
    """A JSON document stored as one Fernet token."""

    # For django-stubs: model attributes hold the decoded document (as with JSONField), not text.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if not value:  # None or ""
            return {}
        return json.loads(decrypt_str(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt_str(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))
