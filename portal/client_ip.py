"""The client's address for login throttling, trusting X-Forwarded-For only as far as configured.

With N trusted reverse proxies each appending the address it saw, the client is the N-th entry from the
right; anything left of it was written by the client and is ignored. With none configured the header is
ignored entirely, so a client cannot pick a fresh address per attempt.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip_address(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.AXES_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        # Not through the whole proxy chain: the address we can see is all we can trust.
        return remote
    return _valid(hops[-proxies]) or remote
