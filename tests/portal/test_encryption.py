"""Secrets at rest: raw rows hold Fernet tokens only; keys rotate with `rotate_encryption_keys`."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from locks.models import AccessCode
from portal.encryption import DecryptionError, decrypt_str, encrypt_str
from providers.models import ProviderAccount
from tests import factories

API_KEY = "seam_live_4f9c2b7e1d0a"
WEBHOOK_SECRET = "whsec_c2VjcmV0LXdlYmhvb2s="
PIN = "739164"


def raw_row(model, pk: int, *columns: str) -> tuple:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()


@pytest.fixture
def secrets_stored(world):
    account = factories.ProviderAccountFactory(
        tenant=world.seaside,
        vendor="seam",
        credentials={"api_key": API_KEY},
        webhook_secret=WEBHOOK_SECRET,
    )
    code = factories.AccessCodeFactory(tenant=world.seaside, lock=world.lock, pin=PIN)
    return account, code


def test_it_stores_no_plaintext_credentials_webhook_secret_or_pin(secrets_stored):
    account, code = secrets_stored
    credentials, webhook_secret = raw_row(ProviderAccount, account.pk, "credentials", "webhook_secret")
    (pin, fingerprint) = raw_row(AccessCode, code.pk, "pin", "pin_fingerprint")
    for raw in (credentials, webhook_secret, pin, fingerprint):
        for secret in (API_KEY, "4f9c2b7e1d0a", WEBHOOK_SECRET, PIN):
            assert secret not in raw
    assert credentials.startswith("gAAAA") and webhook_secret.startswith("gAAAA") and pin.startswith("gAAAA")
    # And the ORM gives the plaintext back.
    account.refresh_from_db()
    code.refresh_from_db()
    assert account.credentials == {"api_key": API_KEY}
    assert account.webhook_secret == WEBHOOK_SECRET
    assert code.pin == PIN


def test_it_encrypts_equal_values_to_different_tokens(db):
    assert encrypt_str(PIN) != encrypt_str(PIN)


def test_it_rotates_every_secret_to_the_new_key(settings, secrets_stored):
    account, code = secrets_stored
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = raw_row(ProviderAccount, account.pk, "credentials")[0]

    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        # Old tokens still decrypt while the old key is listed.
        assert ProviderAccount.objects.get(pk=account.pk).credentials == {"api_key": API_KEY}
        call_command("rotate_encryption_keys", stdout=io.StringIO())

    rotated_account = raw_row(ProviderAccount, account.pk, "credentials", "webhook_secret")
    rotated_pin = raw_row(AccessCode, code.pk, "pin")[0]
    assert rotated_account[0] != before
    new_only, old_only = Fernet(new_key.encode()), Fernet(old_key.encode())
    for token in (*rotated_account, rotated_pin):
        new_only.decrypt(token.encode())
        with pytest.raises(InvalidToken):
            old_only.decrypt(token.encode())
    # Every row, not just ours: the world fixture's simulator account and code were rotated too.
    for model in (ProviderAccount, AccessCode):
        column = "credentials" if model is ProviderAccount else "pin"
        for pk in model.objects.values_list("pk", flat=True):
            token = raw_row(model, pk, column)[0]
            if token:
                new_only.decrypt(token.encode())

    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        account = ProviderAccount.objects.get(pk=account.pk)
        assert account.credentials == {"api_key": API_KEY}
        assert account.webhook_secret == WEBHOOK_SECRET
        assert AccessCode.objects.get(pk=code.pk).pin == PIN


def test_it_needs_the_old_key_until_rotation_has_run(settings, secrets_stored):
    account, _ = secrets_stored
    new_key = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]), pytest.raises(DecryptionError):
        ProviderAccount.objects.get(pk=account.pk)


def test_it_raises_decryption_error_on_an_unreadable_token(secrets_stored):
    _, code = secrets_stored
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(AccessCode._meta.db_table)} SET pin = %s WHERE id = %s",
            ["gAAAAAnot-a-real-token", code.pk],
        )
    with pytest.raises(DecryptionError):
        AccessCode.objects.get(pk=code.pk)
    with pytest.raises(DecryptionError):
        decrypt_str("garbage")


def test_it_rotation_refuses_a_token_no_key_can_read(settings, secrets_stored):
    account, _ = secrets_stored
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(ProviderAccount._meta.db_table)} SET webhook_secret = %s WHERE id = %s",
            [Fernet(Fernet.generate_key()).encrypt(b"foreign").decode(), account.pk],
        )
    with pytest.raises(DecryptionError):
        call_command("rotate_encryption_keys", stdout=io.StringIO())
