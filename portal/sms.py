"""Text messages to guests (issue 13): one small contract, a backend chosen by `SMS_BACKEND`.

- `ConsoleSmsBackend` (the default): writes the text to standard output, like Django's console mail
  backend, for development. Not the logger: log lines never carry a PIN.
- `LocmemSmsBackend`: keeps what it sent in `outbox` (tests, and `manage.py simulate`'s recording).
- `TwilioSmsBackend`: Twilio's official library (DESIGN §2: the provider's own package), its HTTP
  going through our one guarded outbound path (`providers.egress`, DESIGN §9): api.twilio.com only, https,
  no redirects, a size limit and a deadline. A status callback URL is passed so delivery reports reach
  `portal.message_views.twilio_status` (signed; checked with Twilio's RequestValidator).

Errors are `SmsError` with our own words (safe to show); nothing Twilio answered is in them.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from providers.egress import EgressError, egress_request

TWILIO_HOSTS = frozenset({"api.twilio.com"})


class SmsError(Exception):
    """The text was not sent; the message is ours."""


@dataclass(frozen=True)
class SmsSent:
    provider_id: str  # "" when the backend has none


class SmsBackend(Protocol):
    def send(self, *, to: str, body: str, status_callback: str = "") -> SmsSent: ...


@dataclass(frozen=True)
class Sms:
    to: str
    body: str
    status_callback: str


class ConsoleSmsBackend:
    def send(self, *, to: str, body: str, status_callback: str = "") -> SmsSent:
        sys.stdout.write(f"SMS to {to}:\n{body}\n{'-' * 40}\n")
        return SmsSent("")


class LocmemSmsBackend:
    outbox: ClassVar[list[Sms]] = []

    def send(self, *, to: str, body: str, status_callback: str = "") -> SmsSent:
        LocmemSmsBackend.outbox.append(Sms(to, body, status_callback))
        return SmsSent(f"locmem-{len(LocmemSmsBackend.outbox)}")


class GuardedTwilioHttpClient(HttpClient):
    """Twilio's HTTP client interface over `providers.egress` (the library's own client would bypass it)."""

    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger("portal.sms"), is_async=False, timeout=None)

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        try:
            response = egress_request(method, uri, params=params, data=data, headers=headers, auth=auth,
                                      allowed_hosts=TWILIO_HOSTS, https_only=True, max_redirects=0)
        except EgressError as exc:
            raise SmsError(f"Twilio could not be reached: {exc}") from exc
        return TwilioResponse(response.status_code, response.text, response.headers)


class TwilioSmsBackend:
    """`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and `TWILIO_FROM` (a number, or a Messaging Service SID
    starting "MG") from the environment."""

    def __init__(self) -> None:
        self.account_sid = settings.TWILIO_ACCOUNT_SID
        self.sender = settings.TWILIO_FROM
        if not (self.account_sid and settings.TWILIO_AUTH_TOKEN and self.sender):
            raise SmsError("Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM).")
        self.client = Client(self.account_sid, settings.TWILIO_AUTH_TOKEN, http_client=GuardedTwilioHttpClient())

    def send(self, *, to: str, body: str, status_callback: str = "") -> SmsSent:
        kwargs: dict[str, Any] = {"to": to, "body": body}
        if self.sender.startswith("MG"):
            kwargs["messaging_service_sid"] = self.sender
        else:
            kwargs["from_"] = self.sender
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            sent = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            # Twilio's error code is a number from its documentation, not text it chose to send back.
            raise SmsError(f"Twilio refused the text (HTTP {exc.status}, error {exc.code}).") from exc
        except TwilioException as exc:
            raise SmsError("Twilio's answer could not be read.") from exc
        return SmsSent(sent.sid or "")


def sms_backend() -> SmsBackend:
    backend: SmsBackend = import_string(settings.SMS_BACKEND)()
    return backend
