"""OAuth connect and refresh for the vendors that hand out short-lived tokens (DESIGN §5, §9).

Pure protocol: the authorization URL (state, PKCE where the vendor takes it), the code exchange and the
refresh, each one HTTP request through the guarded outbound path (providers/egress.py) to the vendor's
own token host. No database here: `locks.tokens` keeps the tokens (encrypted in the account's
credentials, under `oauth`), refreshes them under a row lock and saves the rotated refresh token in the
transaction that spends the old one. Adapters ask `access_token(account)` for a bearer token; when an
engine-side keeper is registered (locks.apps) that goes through the locked path and refreshes on expiry.

The OAuth protocol is Authlib's (`OAuth2Session`: authorization URL, S256 code challenge, token request
bodies, client authentication, error parsing); only its transport is ours, so that a token request is
held to the same rules as every other vendor call (allow-listed hosts, https, no redirects, a deadline
and a size limit).

What the vendors publish (V = verified in the cited source, A = assumed):

SmartThings (webhook SmartApp / OAuth-In app)
- V token endpoint `https://api.smartthings.com/oauth/token`: smartthings-core-sdk src/st-client.ts
  `SmartThingsOAuthClient` (the SDK moved it from `auth-global.api.smartthings.com` to the API base URL,
  CHANGELOG #264; both hosts are allowed). Client authentication is HTTP Basic client_id:client_secret
  (st-client.ts redeemCode, authenticator.ts RefreshTokenAuthenticator): `client_secret_basic`.
- V the code exchange answers `installed_app_id` beside the tokens (smartapp-sdk-nodejs lib/smart-app.js
  handleOAuthCallback).
- V lifetimes: the tokens of INSTALL/UPDATE are "the 24-hour access token" with a refresh token; EVENT
  tokens last 5 minutes and cannot be refreshed (smartapp-sdk-nodejs README "Making API Calls Outside of
  an EVENT Handler"). Refresh tokens rotate: the SDK stores the new one (authenticator.ts) and warns
  that two refreshers at once corrupt it. A 30-day refresh-token lifetime is A (community lore).
- A authorization endpoint `https://api.smartthings.com/oauth/authorize`; scopes
  `r:devices:* x:devices:* r:locations:*`; no PKCE (neither SDK sends a code_verifier).

Schlage Home API v2 (Allegion)
- V "OAuth 2.0 using the authorization code grant type" with a client id, client secret and a redirect
  URL issued by Allegion on request (developer.allegion.com …/schlage-home/getting-started.html); the
  redirect carries `state` and `code`. The subscription key (`alle-subscription-key`) still goes on
  every API call.
- A endpoints: the reference is login-gated; a third-party catalogue (apis.io "Schlage Home API —
  Devices") says the OAuth server is `account.schlage.com`. We assume `/oauth2/authorize` and
  `/oauth2/token` there, `client_secret_post`, PKCE S256 accepted, lifetimes from `expires_in`.
  Override with `OAUTH_ENDPOINT_OVERRIDES` once Allegion confirms.

Nuki Web API (OAuth 2, "Code Flow")
- V authorization endpoint `https://api.nuki.io/oauth/authorize` with response_type=code, client_id,
  redirect_uri, scope (docs.nuki.io/guide/authorization/oauth2); token endpoint
  `https://api.nuki.io/oauth/token` (the swagger's OAuth2 service, as generated in
  @dodi-smart/nuki-graphql-api OAuth2Service.refreshToken); the code flow needs the client secret and
  returns a refresh token; implicit-flow tokens expire after one hour (developer.nuki.io/t/52).
- A code-flow access-token lifetime: from `expires_in` (not published); scopes
  `account smartlock smartlock.auth smartlock.readOnly`; `client_secret_post`; no PKCE.
- API tokens (pasted) do not expire and stay supported (developer.nuki.io/t/52).

Every lifetime is taken from the answer's `expires_in` when there is one; DEFAULT_LIFETIME applies
otherwise.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings

from providers.base import ProviderError, Reason
from providers.egress import EgressError, EgressTimeout, egress_request, guarded_session
from providers.http import VENDOR_HOSTS, redact

if TYPE_CHECKING:
    from providers.models import ProviderAccount

logger = logging.getLogger(__name__)

TOKEN_KEY = "oauth"  # where the tokens live inside the account's encrypted credentials
TIMEOUT = (5.0, 20.0)
DEFAULT_LIFETIME = timedelta(hours=1)  # when a vendor answers no expires_in
STATE_BYTES = 32
# OAuth error codes that mean "these tokens (or this client) are dead": only a reconnect helps.
REJECTED_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "invalid_token"})


@dataclass(frozen=True)
class OAuthVendor:
    authorize_url: str
    token_url: str
    scope: str
    pkce: bool
    token_auth: str  # Authlib's token_endpoint_auth_method


ENDPOINTS: dict[str, OAuthVendor] = {
    "smartthings": OAuthVendor(
        authorize_url="https://api.smartthings.com/oauth/authorize",
        token_url="https://api.smartthings.com/oauth/token",
        scope="r:devices:* x:devices:* r:locations:*",
        pkce=False,
        token_auth="client_secret_basic",
    ),
    "schlage": OAuthVendor(
        authorize_url="https://account.schlage.com/oauth2/authorize",
        token_url="https://account.schlage.com/oauth2/token",
        scope="openid offline_access",
        pkce=True,
        token_auth="client_secret_post",
    ),
    "nuki": OAuthVendor(
        authorize_url="https://api.nuki.io/oauth/authorize",
        token_url="https://api.nuki.io/oauth/token",
        scope="account smartlock smartlock.auth smartlock.readOnly",
        pkce=False,
        token_auth="client_secret_post",
    ),
}
OAUTH_VENDORS = frozenset(ENDPOINTS)


def vendor_endpoints(vendor: str) -> OAuthVendor:
    """The vendor's endpoints, with `OAUTH_ENDPOINT_OVERRIDES[vendor]` applied (a vendor sandbox, a
    test's loopback fake). Token hosts stay allow-listed (VENDOR_HOSTS) whatever the override says."""
    try:
        base = ENDPOINTS[vendor]
    except KeyError as exc:
        raise LookupError(f"{vendor} does not connect with OAuth") from exc
    overrides: Mapping[str, Any] = (getattr(settings, "OAUTH_ENDPOINT_OVERRIDES", {}) or {}).get(vendor, {})
    return replace(base, **{k: v for k, v in overrides.items() if k in ("authorize_url", "token_url")})


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str = ""
    installed_app_id: str = ""  # SmartThings: the installed app these tokens act for

    def expires_within(self, now: datetime, seconds: float) -> bool:
        return self.expires_at <= now + timedelta(seconds=seconds)

    def as_stored(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(),
            "scope": self.scope,
            "installed_app_id": self.installed_app_id,
        }

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> TokenSet | None:
        try:
            return cls(
                access_token=str(data["access_token"]),
                refresh_token=str(data.get("refresh_token") or ""),
                expires_at=datetime.fromisoformat(str(data["expires_at"])),
                scope=str(data.get("scope") or ""),
                installed_app_id=str(data.get("installed_app_id") or ""),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def secrets(self) -> tuple[str, ...]:
        return (self.access_token, self.refresh_token)


def stored_token(credentials: Mapping[str, Any] | None) -> TokenSet | None:
    data = (credentials or {}).get(TOKEN_KEY)
    return TokenSet.from_stored(data) if isinstance(data, Mapping) else None


def with_token(credentials: Mapping[str, Any] | None, token: TokenSet) -> dict[str, Any]:
    return {**(credentials or {}), TOKEN_KEY: token.as_stored()}


@dataclass(frozen=True)
class AuthorizationStart:
    url: str
    state: str
    code_verifier: str = ""  # kept server-side (the session) until the callback


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)

    @classmethod
    def of(cls, credentials: Mapping[str, Any] | None) -> ClientCredentials:
        stored = credentials or {}
        return cls(str(stored.get("client_id") or ""), str(stored.get("client_secret") or ""))


class _GuardedOAuth2Session(OAuth2Session):  # Authlib ships no type hints: mypy sees Any
    """Authlib's client with our transport: every request goes through `egress_request`."""

    def __init__(self, vendor: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._vendor = vendor
        self._transport = guarded_session()

    def request(
        self, method: str, url: str, withhold_token: bool = False, auth: Any = None, **kwargs: Any
    ) -> requests.Response:
        for managed in ("timeout", "allow_redirects", "stream"):
            kwargs.pop(managed, None)
        return egress_request(
            method, url, session=self._transport, allowed_hosts=VENDOR_HOSTS.get(self._vendor, frozenset()),
            https_only=True, max_redirects=0, timeout=TIMEOUT, auth=auth, **kwargs,
        )


def _session(vendor: str, client: ClientCredentials, *, redirect_uri: str = "") -> _GuardedOAuth2Session:
    spec = vendor_endpoints(vendor)
    return _GuardedOAuth2Session(
        vendor,
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=spec.token_auth,
        scope=spec.scope,
        redirect_uri=redirect_uri or None,
        code_challenge_method="S256" if spec.pkce else None,
    )


def authorization_start(*, vendor: str, client: ClientCredentials, redirect_uri: str) -> AuthorizationStart:
    """Where to send the admin's browser: the vendor's consent page with a fresh state (and PKCE)."""
    if not client.client_id:
        raise ProviderError(Reason.AUTH_FAILED, "the account has no OAuth client id")
    spec = vendor_endpoints(vendor)
    state = secrets.token_urlsafe(STATE_BYTES)
    verifier = secrets.token_urlsafe(64) if spec.pkce else ""
    url, _state = _session(vendor, client, redirect_uri=redirect_uri).create_authorization_url(
        spec.authorize_url, state=state, code_verifier=verifier or None
    )
    return AuthorizationStart(url=url, state=state, code_verifier=verifier)


def code_exchange(
    *, vendor: str, client: ClientCredentials, redirect_uri: str, code: str, code_verifier: str, now: datetime
) -> TokenSet:
    """The authorization code for tokens. Raises ProviderError (auth_failed when the vendor refuses)."""
    extra = {"code_verifier": code_verifier} if code_verifier else {}
    answer = _token_call(
        vendor, client, now=now, secrets=(code,),
        call=lambda session: session.fetch_token(
            vendor_endpoints(vendor).token_url, grant_type="authorization_code", code=code, **extra
        ),
    )
    return answer


def token_refresh(*, vendor: str, client: ClientCredentials, token: TokenSet, now: datetime) -> TokenSet:
    """Spend `token.refresh_token` for a new pair. The vendor may rotate the refresh token: the caller
    must store the result before anything else can happen (locks.tokens does, in one transaction)."""
    fresh = _token_call(
        vendor, client, now=now, secrets=token.secrets(),
        call=lambda session: session.refresh_token(
            vendor_endpoints(vendor).token_url, refresh_token=token.refresh_token
        ),
    )
    # A vendor that does not rotate answers no refresh token: the old one stays good (RFC 6749 §6).
    return replace(
        fresh,
        refresh_token=fresh.refresh_token or token.refresh_token,
        installed_app_id=fresh.installed_app_id or token.installed_app_id,
    )


def _token_call(
    vendor: str, client: ClientCredentials, *, now: datetime, secrets: tuple[str, ...],
    call: Callable[[_GuardedOAuth2Session], Mapping[str, Any]],
) -> TokenSet:
    hidden = (*secrets, client.client_secret)
    try:
        answer = call(_session(vendor, client))
    except OAuthError as exc:
        error = str(getattr(exc, "error", "") or "")
        logger.warning("%s token request refused: %s", vendor, redact(error, hidden))
        reason = Reason.AUTH_FAILED if error in REJECTED_ERRORS else Reason.VENDOR_ERROR
        raise ProviderError(reason, f"token endpoint: {error or 'refused'}") from exc
    except EgressError as exc:
        reason = Reason.TIMEOUT if isinstance(exc, EgressTimeout) else Reason.VENDOR_ERROR
        raise ProviderError(reason, f"{vendor} token endpoint: {exc}") from exc
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        reason = Reason.AUTH_FAILED if status in (401, 403) else Reason.VENDOR_ERROR
        raise ProviderError(reason, f"token endpoint answered HTTP {status}", status_code=status) from exc
    except ValueError as exc:  # not JSON
        raise ProviderError(Reason.VENDOR_ERROR, "token endpoint answered no JSON object") from exc
    return token_from_answer(answer, now=now)


def token_from_answer(answer: Mapping[str, Any], *, now: datetime) -> TokenSet:
    """A token endpoint's JSON (or a SmartApp lifecycle's tokens) as a TokenSet."""
    access = str(answer.get("access_token") or "")
    if not access:
        raise ProviderError(Reason.VENDOR_ERROR, "token endpoint answered no access token")
    try:
        lifetime = timedelta(seconds=int(answer["expires_in"]))
    except (KeyError, TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME
    return TokenSet(
        access_token=access,
        refresh_token=str(answer.get("refresh_token") or ""),
        expires_at=now + lifetime,
        scope=str(answer.get("scope") or ""),
        installed_app_id=str(answer.get("installed_app_id") or ""),
    )


# --- the engine's keeper ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledApp:
    """What a SmartApp INSTALL/UPDATE lifecycle hands us: its tokens and the subscriptions we made."""

    installed_app_id: str
    token: TokenSet | None
    subscriptions: list[dict[str, Any]]


class TokenKeeper(Protocol):
    """Implemented by `locks.tokens` (registered at start-up): the one place tokens are written."""

    def fresh_access_token(self, account: ProviderAccount) -> str: ...

    def installed_app_record(self, account: ProviderAccount, installed: InstalledApp) -> None: ...


_keeper: TokenKeeper | None = None


def token_keeper_register(keeper: TokenKeeper | None) -> None:
    global _keeper
    _keeper = keeper


def token_keeper() -> TokenKeeper | None:
    return _keeper


def access_token(account: ProviderAccount) -> str:
    """The bearer token for a call now: refreshed first when it is about to expire (through the keeper's
    locked path). "" when the account was never connected."""
    token = stored_token(account.credentials)
    if token is None:
        return ""
    if _keeper is None:
        return token.access_token
    return _keeper.fresh_access_token(account)


def token_source_for(account: ProviderAccount) -> Callable[[], str] | None:
    """For VendorHttp: a connected account's fresh bearer token per call; None for pasted credentials."""
    if stored_token(account.credentials) is None:
        return None
    return lambda: access_token(account)
