"""OAuth tokens of provider accounts: stored, refreshed, never lost (DESIGN §5 "OAuth vendors", §6).

The one writer of an account's tokens (encrypted in `credentials["oauth"]`, expiry mirrored in
`token_expires_at` for the refresh task). Vendors rotate refresh tokens: spending one answers a new one
and kills the old. So a refresh runs under a row lock on the account (`select_for_update`) and stores the
new pair in the same transaction that read the old one:

- two workers refreshing at once: the second waits for the lock, re-reads, finds a token that no longer
  expires soon and uses it, never spending the (already spent) old refresh token;
- a worker killed mid-refresh: its transaction rolls back and releases the lock; the stored pair is the
  one it read. (If the vendor answered before the kill, the vendor's rotation is what decides whether
  that old refresh token still works; the window is one HTTP answer, not a whole job.)

A refresh the vendor rejects (invalid_grant and friends) drops the dead tokens and flags the account
`auth_failed` through `fleet.account_record_status`, which shows the playbook ("reconnect the account")
on every lock; a successful connect (or reconnect) records the account OK, which resolves those issues.

The HTTP itself is `providers.oauth`'s. Adapters reach `account_access_token` through the keeper
registered at start-up (`locks.apps`), so every vendor call gets a token that is valid now.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from locks.activity import activity_record
from locks.conf import engine
from locks.fleet import account_record_status
from providers import oauth
from providers.base import ProviderError, Reason
from providers.models import AccountStatus, ProviderAccount

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

logger = logging.getLogger(__name__)

RECONNECT_WORDS = "The vendor no longer accepts this account's authorization: reconnect the account."
NOT_CONNECTED_WORDS = "The account is not connected: connect (or reconnect) the account."


def _store(account: ProviderAccount, token: oauth.TokenSet | None) -> None:
    """Write (or, with None, drop) the tokens on a row the caller holds locked."""
    credentials = dict(account.credentials or {})
    if token is None:
        credentials.pop(oauth.TOKEN_KEY, None)
    else:
        credentials = oauth.with_token(credentials, token)
    account.credentials = credentials
    account.token_expires_at = token.expires_at if token is not None else None
    account.save(update_fields=["credentials", "token_expires_at"])


def account_connect(
    *, account: ProviderAccount, code: str, code_verifier: str, redirect_uri: str,
    actor: AbstractBaseUser | AnonymousUser | None, now: datetime,
) -> None:
    """Finish "Connect"/"Reconnect": trade the authorization code for tokens and store them. Raises
    ProviderError (nothing stored) when the vendor refuses the code."""
    token = oauth.code_exchange(
        vendor=account.vendor, client=oauth.ClientCredentials.of(account.credentials), redirect_uri=redirect_uri,
        code=code, code_verifier=code_verifier, now=now,
    )
    with transaction.atomic():
        locked = ProviderAccount.objects.select_for_update().get(pk=account.pk)
        _store(locked, token)
        account_record_status(account=locked, status=AccountStatus.OK, detail="", now=now)
        activity_record(
            tenant_id=locked.tenant_id, actor=actor, verb="provider_account.connected", now=now,
            message=f"{actor} connected the {locked.get_vendor_display()} account “{locked.name}”",
            data={"account_id": locked.pk},
        )
    account.credentials, account.token_expires_at = locked.credentials, locked.token_expires_at
    account.status, account.status_detail = locked.status, locked.status_detail


def account_access_token(*, account: ProviderAccount, now: datetime) -> str:
    """A bearer token valid for a call made now; refreshed (under the lock) when it is about to expire."""
    token = oauth.stored_token(account.credentials)
    if token is None:
        raise ProviderError(Reason.AUTH_FAILED, NOT_CONNECTED_WORDS)
    if not token.expires_within(now, engine().TOKEN_REFRESH_MARGIN_SECONDS):
        return token.access_token
    fresh = account_refresh_token(account_id=account.pk, now=now)
    account.credentials = oauth.with_token(account.credentials, fresh)
    account.token_expires_at = fresh.expires_at
    return fresh.access_token


def account_refresh_token(*, account_id: int, now: datetime, ahead: timedelta | None = None) -> oauth.TokenSet:
    """Refresh the account's tokens if they expire within `ahead` (default: the call-time margin).

    Raises ProviderError: auth_failed when the vendor rejects the refresh (the account is flagged and its
    dead tokens dropped, committed before the raise), transient reasons when the vendor could not be
    asked (nothing changed)."""
    ahead = ahead if ahead is not None else timedelta(seconds=engine().TOKEN_REFRESH_MARGIN_SECONDS)
    rejected: ProviderError | None = None
    with transaction.atomic():
        account = ProviderAccount.objects.select_for_update().get(pk=account_id)
        token = oauth.stored_token(account.credentials)
        if token is None:
            raise ProviderError(Reason.AUTH_FAILED, NOT_CONNECTED_WORDS)
        if not token.expires_within(now, ahead.total_seconds()):
            return token  # refreshed by someone else while we waited for the lock
        try:
            if not token.refresh_token:
                raise ProviderError(Reason.AUTH_FAILED, "no refresh token stored")
            fresh = oauth.token_refresh(
                vendor=account.vendor, client=oauth.ClientCredentials.of(account.credentials), token=token, now=now
            )
        except ProviderError as exc:
            if exc.reason != Reason.AUTH_FAILED:
                raise
            rejected = exc
            _store(account, None)
            account_record_status(account=account, status=AccountStatus.AUTH_FAILED, detail=RECONNECT_WORDS,
                                  now=now)
            activity_record(
                tenant_id=account.tenant_id, verb="provider_account.token_rejected", now=now,
                message=f"{account.get_vendor_display()} refused to refresh the authorization of “{account.name}”",
                data={"account_id": account.pk},
            )
        else:
            _store(account, fresh)
            return fresh
    logger.warning("account %s: token refresh rejected: %s", account_id, rejected.vendor_detail)
    # Our words travel on (command detail, account status): what to do, not the vendor's error code.
    raise ProviderError(Reason.AUTH_FAILED, RECONNECT_WORDS) from rejected


def accounts_due_for_refresh(*, now: datetime) -> list[int]:
    """Connected accounts whose access token expires before the task's next run (plus a margin)."""
    ahead = timedelta(minutes=engine().TOKEN_REFRESH_AHEAD_MINUTES)
    return list(
        ProviderAccount.objects.filter(token_expires_at__isnull=False, token_expires_at__lte=now + ahead)
        .order_by("token_expires_at")
        .values_list("pk", flat=True)
    )


def tokens_refresh_due(*, now: datetime) -> int:
    """The scheduled refresh: every due account, each in its own locked transaction. Returns how many
    were refreshed; a vendor that cannot be asked now is tried again at the next run."""
    ahead = timedelta(minutes=engine().TOKEN_REFRESH_AHEAD_MINUTES)
    refreshed = 0
    for account_id in accounts_due_for_refresh(now=now):
        try:
            account_refresh_token(account_id=account_id, now=now, ahead=ahead)
        except ProviderError as exc:
            logger.info("account %s: token not refreshed (%s)", account_id, exc.reason)
            continue
        refreshed += 1
    return refreshed


def account_record_installed_app(
    *, account: ProviderAccount, installed: oauth.InstalledApp, now: datetime
) -> None:
    """A SmartApp INSTALL/UPDATE: its tokens (when it handed us a refresh token) and its subscriptions."""
    with transaction.atomic():
        locked = ProviderAccount.objects.select_for_update().get(pk=account.pk)
        if installed.token is not None:
            _store(locked, installed.token)
            account_record_status(account=locked, status=AccountStatus.OK, detail="", now=now)
        locked.subscriptions = installed.subscriptions
        locked.save(update_fields=["subscriptions"])
        activity_record(
            tenant_id=locked.tenant_id, verb="provider_account.subscribed", now=now,
            message=f"The SmartApp of “{locked.name}” subscribed to {len(installed.subscriptions)} event source(s)",
            data={"account_id": locked.pk, "installed_app_id": installed.installed_app_id},
        )


class EngineTokenKeeper:
    """`providers.oauth.TokenKeeper` for the adapters and the webhook intake (registered in locks.apps)."""

    def fresh_access_token(self, account: ProviderAccount) -> str:
        return account_access_token(account=account, now=timezone.now())

    def installed_app_record(self, account: ProviderAccount, installed: oauth.InstalledApp) -> None:
        account_record_installed_app(account=account, installed=installed, now=timezone.now())
