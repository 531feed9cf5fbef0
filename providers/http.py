"""The HTTP edge shared by the vendor adapters: one `requests` session per adapter, a timeout on every
call, vendor failures normalized to `ProviderError`, secrets kept out of every message.

Adapters call `VendorHttp.request(...)`; it returns the `requests.Response` for a 2xx and raises
`ProviderError` for anything else. The reason comes from the vendor's own error word when the adapter
knows it (`word_reasons`, looked up with the adapter's `error_word` extractor), otherwise from the HTTP
status (`STATUS_REASONS`). Nothing here retries: retries are the engine's job (DESIGN §4).

Every call goes through the guarded outbound path (providers/egress.py): only the vendor's own hosts
(`VENDOR_HOSTS`), https, no redirects, a size limit and a total deadline. `vendor_detail` keeps the
vendor's (redacted) words for logs and engine records; what a user is shown comes from `error_words`,
which never repeats them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from providers.base import ProviderError, Reason, is_transient
from providers.egress import EgressError, EgressTimeout, egress_request, guarded_session

logger = logging.getLogger(__name__)

# HTTP status → normalized reason, where the body does not say better. 400/422 default to
# invalid_pin because the only thing we send that a lock-vendor can reject as input is the code (PIN,
# name, window); adapters refine to schedule_invalid from the body.
STATUS_REASONS: dict[int, Reason] = {
    400: Reason.INVALID_PIN,
    401: Reason.AUTH_FAILED,
    403: Reason.AUTH_FAILED,
    404: Reason.NOT_FOUND_ON_DEVICE,
    408: Reason.TIMEOUT,
    409: Reason.DUPLICATE_PIN,
    422: Reason.INVALID_PIN,
    423: Reason.BUSY,
    429: Reason.RATE_LIMITED,
}
SERVER_ERROR_REASON = Reason.VENDOR_ERROR  # any 5xx
UNKNOWN_STATUS_REASON = Reason.VENDOR_ERROR  # a status nobody documented (3xx, 418, …)

# The hosts each vendor's API lives on (VENDORS.md); a base URL elsewhere is refused at the form and when
# used. Keys are the adapters' `vendor` names.
VENDOR_HOSTS: dict[str, frozenset[str]] = {
    "seam": frozenset({"connect.getseam.com"}),
    # The OAuth token endpoint is on the API host (smartthings-core-sdk st-client.ts); older SDKs used
    # auth-global (providers/oauth.py).
    "smartthings": frozenset({"api.smartthings.com", "auth-global.api.smartthings.com"}),
    "nuki": frozenset({"api.nuki.io"}),  # API and OAuth (docs.nuki.io/guide/authorization/oauth2)
    "schlage": frozenset({"api.allegion.com", "account.schlage.com"}),  # + the assumed OAuth host
}

# What a user is told, by reason; the vendor's own text stays in logs and vendor_detail.
REASON_WORDS: dict[Reason, str] = {
    Reason.AUTH_FAILED: "The vendor refused the credentials",
    Reason.TIMEOUT: "The vendor did not answer in time",
    Reason.RATE_LIMITED: "The vendor is limiting requests; try again later",
    Reason.BUSY: "The vendor is busy; try again later",
    Reason.VENDOR_ERROR: "The vendor answered with an error",
    Reason.NOT_FOUND_ON_DEVICE: "The vendor did not find what was asked for",
}
OTHER_REASON_WORDS = "The vendor refused the request"

DETAIL_LIMIT = 500  # characters of vendor text kept in vendor_detail
REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 3  # shorter strings would blank out unrelated text


def status_reason(status: int, overrides: Mapping[int, Reason] | None = None) -> Reason:
    """`overrides` lets a vendor give a status its own meaning (Nuki's 402/426)."""
    table = {**STATUS_REASONS, **(overrides or {})}
    if status in table:
        return table[status]
    if 500 <= status <= 599:
        return SERVER_ERROR_REASON
    return UNKNOWN_STATUS_REASON


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (API key, token, PIN) replaced; longest first so prefixes cannot leak."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def error_words(exc: ProviderError) -> str:
    """`exc` in our own words, safe to show: the reason and status, never the vendor's text."""
    if isinstance(exc.__cause__, EgressError):
        return str(exc.__cause__)  # written by us (providers/egress.py)
    words = REASON_WORDS.get(exc.reason, OTHER_REASON_WORDS)
    return f"{words} (HTTP {exc.status_code})." if exc.status_code else f"{words}."


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def response_json(response: requests.Response, *, secrets: Iterable[str | None] = ()) -> Any:
    """The body as JSON; a body that is not JSON is the vendor's fault (vendor_error, raw text kept)."""
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError) as exc:
        raw = redact(response.text or "", secrets)[:DETAIL_LIMIT]
        raise ProviderError(
            Reason.VENDOR_ERROR, f"malformed JSON from vendor: {raw!r}", status_code=response.status_code
        ) from exc


def _body_json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


ErrorWord = Callable[[Any], str]  # vendor JSON body → the vendor's error word ("" when none)


def error_for_response(
    response: requests.Response,
    *,
    error_word: ErrorWord | None = None,
    error_message: ErrorWord | None = None,
    word_reasons: Mapping[str, Reason] | None = None,
    status_reasons: Mapping[int, Reason] | None = None,
    word_statuses: frozenset[int] | None = None,
    secrets: Iterable[str | None] = (),
) -> ProviderError:
    """A non-2xx response as a ProviderError: vendor word first, then status; the vendor's words kept
    (its message when `error_message` finds one, else the raw body), secrets redacted.

    `word_statuses` limits the statuses whose reason the vendor word may refine (None: all), for vendors
    whose words are vague but whose statuses are exact (Nuki: 409 is a duplicate whatever the text)."""
    secrets = tuple(secrets)
    body = _body_json_or_none(response)
    word = error_word(body) if (error_word and body is not None) else ""
    if word_statuses is not None and response.status_code not in word_statuses:
        word = ""
    reason = (word_reasons or {}).get(word) or status_reason(response.status_code, status_reasons)
    message = error_message(body) if (error_message and body is not None) else ""
    raw = redact(message or response.text or "", secrets)[:DETAIL_LIMIT]
    detail = f"HTTP {response.status_code}" + (f" {word}" if word else "") + (f": {raw}" if raw else "")
    # Retry-After is honoured wherever a retry makes sense (429, but also a 503 or 423 that sends one).
    retry_after = retry_after_seconds(response.headers.get("Retry-After")) if is_transient(reason) else None
    return ProviderError(reason, detail, retry_after=retry_after, status_code=response.status_code)


@dataclass
class VendorHttp:
    """One vendor connection: base URL, auth headers, timeout, and the secrets never to repeat."""

    vendor: str
    base_url: str
    headers: Mapping[str, str]
    timeout: tuple[float, float]
    secrets: tuple[str, ...] = ()
    error_word: ErrorWord | None = None
    error_message: ErrorWord | None = None
    word_reasons: Mapping[str, Reason] = field(default_factory=dict)
    status_reasons: Mapping[int, Reason] = field(default_factory=dict)
    word_statuses: frozenset[int] | None = None
    session: requests.Session = field(default_factory=guarded_session)
    # OAuth accounts: asked for the bearer token before every call, so an expired one is refreshed first.
    token_source: Callable[[], str] | None = None
    _token: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session.headers.update(self.headers)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        secrets: Iterable[str | None] = (),
    ) -> requests.Response:
        """Send once; a 2xx comes back, everything else raises ProviderError.

        `secrets` adds per-call values (the PIN being sent) to the ones redacted from error text.
        """
        all_secrets = (*self.secrets, *secrets)
        if self.token_source is not None:
            self._token = self.token_source()
            self.session.headers["Authorization"] = f"Bearer {self._token}"
            all_secrets = (*all_secrets, self._token)
        try:
            response = egress_request(
                method,
                self.url(path),
                session=self.session,
                allowed_hosts=VENDOR_HOSTS.get(self.vendor, frozenset()),
                https_only=True,
                max_redirects=0,
                timeout=self.timeout,
                json=json,
                params=params,
            )
        except EgressError as exc:
            cause = redact(repr(exc.__cause__), all_secrets)[:DETAIL_LIMIT] if exc.__cause__ else ""
            logger.warning("%s %s %s failed: %s %s", self.vendor, method, path, exc, cause)
            reason = Reason.TIMEOUT if isinstance(exc, EgressTimeout) else Reason.VENDOR_ERROR
            raise ProviderError(reason, f"{self.vendor} {method} {path}: {exc}") from exc
        logger.debug("%s %s %s → %s", self.vendor, method, path, response.status_code)
        if response.ok:
            return response
        raise error_for_response(
            response,
            error_word=self.error_word,
            error_message=self.error_message,
            word_reasons=self.word_reasons,
            status_reasons=self.status_reasons,
            word_statuses=self.word_statuses,
            secrets=all_secrets,
        )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request` plus JSON decoding (malformed JSON → vendor_error)."""
        response = self.request(method, path, **kwargs)
        return response_json(response, secrets=(*self.secrets, self._token, *kwargs.get("secrets", ())))
