"""The one outbound HTTP path (DESIGN §9): vendor APIs (providers/http.py) and iCal feeds (portal/feeds.py).

A tenant admin types the addresses we fetch (a vendor base URL, a feed URL), so every request is treated
as a possible SSRF:

- **The connected address is checked, on every hop.** The check lives in the urllib3 connection: the
  name is resolved once, every answer must be a public address, the socket connects to one of those
  very addresses and `getpeername()` is checked again before a byte is sent. A name that rebinds
  between two look-ups has nothing to rebind: there is only one. Private, loopback, link-local,
  multicast, reserved and shared addresses are refused unless `EGRESS_ALLOW_PRIVATE_ADDRESSES` says
  otherwise (tests with loopback stubs; never switched on by DEBUG).
- **No redirect to another host.** Same-host redirects are followed up to `max_redirects` times (feeds),
  each hop re-checked; vendors get none.
- **Allow-listed hosts** when the caller gives a list (vendors), https only.
- **Streamed size limit and a total deadline.** The body is read with `stream=True`, piece by piece, and
  cut off at `EGRESS_MAX_RESPONSE_BYTES`; a watchdog shuts the socket down when
  `EGRESS_DEADLINE_SECONDS` have passed since the request began (connect, TLS, headers and a body that
  drips one byte at a time included), not merely when one read stalls.
- **Our own words.** Every failure is an `EgressError` whose message we wrote; nothing the remote side
  sent is ever in it, so callers may show it to users.

Why by hand and not a library: `advocate` (2020) is unmaintained and patches requests internals of its
time; `requests-hardened` pins the first resolved address and is configured once per process (no per-test
setting), and neither gives a total deadline, a streamed size limit or per-vendor host lists, which we
would still write here. The address check itself is one method of a urllib3 connection.

`responses` (the vendor tests' HTTP mock) replaces `HTTPAdapter.send`, so it still intercepts: the
connection layer below it, where the address check lives, is simply not reached.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.connection import allowed_gai_family, create_connection

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 20.0)  # connect, read: each bounded again by what is left of the deadline
READ_CHUNK = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Ranges `is_global` lets through that still lead inside someone's network once translated.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressError(Exception):
    """An outbound request failed; the message is ours, safe to show."""


class EgressRefused(EgressError):
    """We would not send this request."""


class EgressSchemeRefused(EgressRefused):
    pass


class EgressHostRefused(EgressRefused):
    """The host is not on the caller's allow-list."""


class EgressAddressRefused(EgressRefused):
    """The name resolved to (or the socket reached) an address that is not public."""


class EgressRedirectRefused(EgressRefused):
    """A redirect to another host, or one too many."""


class EgressTooLarge(EgressError):
    pass


class EgressTimeout(EgressError):
    pass


class EgressUnreachable(EgressError):
    pass


@dataclass(frozen=True)
class EgressLimits:
    allow_private: bool
    deadline_seconds: float
    max_response_bytes: int
    max_redirects: int


def egress_limits() -> EgressLimits:
    """The EGRESS_* settings, read on every request so a test can change them; a bad value fails loudly."""
    try:
        limits = EgressLimits(
            allow_private=bool(getattr(settings, "EGRESS_ALLOW_PRIVATE_ADDRESSES", False)),
            deadline_seconds=float(getattr(settings, "EGRESS_DEADLINE_SECONDS", 30.0)),
            max_response_bytes=int(getattr(settings, "EGRESS_MAX_RESPONSE_BYTES", 5 * 1024 * 1024)),
            max_redirects=int(getattr(settings, "EGRESS_MAX_REDIRECTS", 3)),
        )
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"EGRESS_* settings: {exc}") from exc
    if limits.deadline_seconds <= 0 or limits.max_response_bytes <= 0 or limits.max_redirects < 0:
        raise ImproperlyConfigured("EGRESS_* limits must be positive.")
    return limits


def address_allowed(address: str, *, allow_private: bool | None = None) -> bool:
    """Whether we may connect to `address` (an IP literal, as getaddrinfo/getpeername give it)."""
    if allow_private is None:
        allow_private = egress_limits().allow_private
    if allow_private:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None
        )
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


def _is_local_literal(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def url_check(url: str, *, allowed_hosts: Iterable[str] | None = None, https_only: bool = False) -> None:
    """Refuse a URL by its form: scheme, and the allow-list when there is one. (The address is checked
    when connecting, not here: a name says nothing about where it leads.) Under
    EGRESS_ALLOW_PRIVATE_ADDRESSES a loopback/private IP literal passes both, for test stubs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressSchemeRefused("Only http:// and https:// addresses can be fetched.")
    host = parts.hostname.rstrip(".").lower()
    local_ok = egress_limits().allow_private and _is_local_literal(host)
    if https_only and parts.scheme != "https" and not local_ok:
        raise EgressSchemeRefused("Use an https:// address.")
    if allowed_hosts is not None and host not in set(allowed_hosts) and not local_ok:
        raise EgressHostRefused("That host is not one of the vendor's addresses.")


# --- the total deadline --------------------------------------------------------------------------------


class _Deadline:
    """Shuts down every socket of one request when its time is up, wherever the request is blocked."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def track(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


_current_deadline: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "egress_deadline", default=None
)


# --- the connection layer: where the address is checked --------------------------------------------------


class _GuardedConnectionMixin:
    _dns_host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    sock: Any
    host: str

    def _new_conn(self) -> socket.socket:
        try:
            answers = socket.getaddrinfo(self._dns_host, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        addresses = list(dict.fromkeys(answer[4][0] for answer in answers))
        # Every answer must be public, not just the one we would try first: a name that mixes a public
        # and a private address is not a vendor's or a calendar's.
        if not addresses or not all(address_allowed(str(address)) for address in addresses):
            logger.warning("egress refused: %s resolves to a non-public address", self.host)
            raise EgressAddressRefused("The address is not a public internet address.")
        sock = self._connect_to(addresses)
        peer = sock.getpeername()[0]
        if not address_allowed(peer):  # what we actually reached, whatever resolved
            sock.close()
            logger.warning("egress refused: connected to a non-public address for %s", self.host)
            raise EgressAddressRefused("The address is not a public internet address.")
        deadline = _current_deadline.get()
        if deadline is not None:
            deadline.track(sock)
        return sock

    def _connect_to(self, addresses: list[Any]) -> socket.socket:
        error: OSError | None = None
        for address in addresses:
            try:
                # An IP literal: create_connection's own look-up of it cannot ask DNS again.
                return create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")  # type: ignore[arg-type]

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A kept-alive connection was checked when it connected; it still belongs to this request's
        # deadline.
        deadline = _current_deadline.get()
        if deadline is not None:
            deadline.track(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections check the address they reach; no proxies (a proxy's address
    would be the one checked, and the proxy would fetch anything)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise EgressRefused("Outbound requests do not go through a proxy.")


def guarded_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the environment
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- the request ----------------------------------------------------------------------------------------


def _same_host(a: str, b: str) -> bool:
    first, second = urlsplit(a), urlsplit(b)
    if (first.hostname or "").lower() != (second.hostname or "").lower():
        return False
    return not (first.scheme == "https" and second.scheme != "https")  # no downgrade


def _read_body(response: requests.Response, *, limit: int, deadline: _Deadline) -> None:
    """Read the body piece by piece (read1: whatever has arrived), stopping at the limit or the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise EgressTooLarge("The answer is larger than allowed.")
    pieces: list[bytes] = []
    size = 0
    while True:
        if deadline.expired or deadline.remaining() <= 0:
            raise EgressTimeout("The server did not answer in time.")
        piece = response.raw.read1(READ_CHUNK, decode_content=True)
        if not piece:
            break
        size += len(piece)
        if size > limit:
            raise EgressTooLarge("The answer is larger than allowed.")
        pieces.append(piece)
    if deadline.expired:  # the watchdog's shutdown ends a read as if the body were complete
        raise EgressTimeout("The server did not answer in time.")
    response._content = b"".join(pieces)
    response._content_consumed = True  # type: ignore[attr-defined]  # requests' own flag, absent from its stub


def egress_request(
    method: str,
    url: str,
    *,
    session: requests.Session | None = None,
    allowed_hosts: Iterable[str] | None = None,
    https_only: bool = False,
    max_redirects: int | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> requests.Response:
    """Send one request through the guarded path and return the response with its body read.

    Any status comes back (the caller decides what a 404 means); everything that is not an HTTP answer
    within the limits raises an EgressError. `max_redirects` None: EGRESS_MAX_REDIRECTS same-host hops.
    """
    limits = egress_limits()
    hops = limits.max_redirects if max_redirects is None else max_redirects
    allowed = frozenset(allowed_hosts) if allowed_hosts is not None else None
    session = session or guarded_session()
    deadline = _Deadline(limits.deadline_seconds)
    token = _current_deadline.set(deadline)
    response: requests.Response | None = None
    try:
        for hop in range(hops + 1):
            url_check(url, allowed_hosts=allowed, https_only=https_only)
            left = max(0.01, deadline.remaining())
            response = session.request(
                method, url, allow_redirects=False, stream=True,
                timeout=(min(timeout[0], left), min(timeout[1], left)), **kwargs,
            )
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                target = urljoin(url, response.headers["Location"])
                response.close()
                if not _same_host(url, target):
                    raise EgressRedirectRefused("The address redirects to another host.")
                if hop == hops:
                    raise EgressRedirectRefused("The address redirects too many times.")
                if response.status_code in (301, 302, 303) and method.upper() not in ("GET", "HEAD"):
                    method = "GET"
                    kwargs = {k: v for k, v in kwargs.items() if k not in ("json", "data", "files")}
                url = target
                continue
            _read_body(response, limit=limits.max_response_bytes, deadline=deadline)
            return response
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
    except EgressError:
        if response is not None:
            response.close()
        raise
    except (requests.RequestException, HTTPError, OSError) as exc:
        if response is not None:
            response.close()
        logger.info("egress to %s failed: %s", urlsplit(url).hostname, exc.__class__.__name__)
        if deadline.expired or isinstance(exc, requests.Timeout | ReadTimeoutError | TimeoutError):
            raise EgressTimeout("The server did not answer in time.") from exc
        raise EgressUnreachable("The server could not be reached.") from exc
    finally:
        _current_deadline.reset(token)
        deadline.cancel()
