"""Two-factor sign-in (DESIGN §9): an authenticator app (TOTP) plus single-use recovery codes.

Built on django-otp, which leaves our login view, django-axes' login throttling and the CSP as they are:
it only adds devices, `request.user.is_verified()` and throttled code checks. (django-two-factor-auth
would replace the login view with its own wizard.) The rules here:

- admins must have a confirmed authenticator and a verified session before provider accounts, API keys
  and members (the pages that hold vendor credentials and hand out access): without one they are sent to
  set it up, with one to the verify step;
- anyone (staff and owners too) may turn it on; once on, every page asks for the code after sign-in;
- the TOTP secret is shown on the setup page only, while it is unconfirmed; recovery codes are shown once
  and kept hashed (`portal.models.RecoveryCodeDevice`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import ResolverMatch, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import RecoveryCode, RecoveryCodeDevice, Role, recovery_code_digest

logger = logging.getLogger(__name__)

# Pages that hold vendor credentials or hand out access (URL namespaces and names, as routed).
PROTECTED_NAMESPACES = frozenset({"providers"})
PROTECTED_URL_NAMES = frozenset({
    "settings_members", "settings_member_edit", "settings_member_remove", "settings_invitation_revoke",
    "api_key_list", "api_key_revoke",
})
# Reachable while a session still owes its second factor.
OPEN_URL_NAMES = frozenset({"two_factor_verify", "logout", "login"})
# Per session: does this user owe a second factor (they have an authenticator)? Asked once per session.
PENDING = "two_factor_pending"

RECOVERY_CODE_COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


def totp_device(user: Any, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).order_by("id").first()


def totp_device_pending(*, user: Any) -> TOTPDevice:
    """The authenticator being set up (its secret is what the setup page shows), made on first ask."""
    device = totp_device(user, confirmed=False)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def totp_confirm(*, device: TOTPDevice) -> list[str]:
    """The first right code confirms the authenticator; returns the new recovery codes (shown once)."""
    TOTPDevice.objects.filter(user=device.user, confirmed=True).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    logger.info("two-factor sign-in set up for user %s", device.user_id)
    return recovery_codes_issue(user=device.user)


@transaction.atomic
def recovery_codes_issue(*, user: Any) -> list[str]:
    """A fresh set of recovery codes; the old set stops working. Only digests are stored."""
    RecoveryCodeDevice.objects.filter(user=user).delete()
    device = RecoveryCodeDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = ["-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))
             for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create(RecoveryCode(device=device, digest=recovery_code_digest(code)) for code in codes)
    return codes


def recovery_codes_left(*, user: Any) -> int:
    return RecoveryCode.objects.filter(device__user=user, used_at__isnull=True).count()


@transaction.atomic
def two_factor_disable(*, user: Any) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    RecoveryCodeDevice.objects.filter(user=user).delete()
    logger.info("two-factor sign-in turned off for user %s", user.pk)


def sessions_end_others(*, user: Any, keep_session_key: str | None) -> int:
    """Sign the user out everywhere but here: delete their other live sessions (database sessions)."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.session_key != keep_session_key and session.get_decoded().get(SESSION_KEY) == str(user.pk):
            session.delete()
            ended += 1
    logger.info("user %s ended %d other session(s)", user.pk, ended)
    return ended


def _redirect(name: str, request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}")


def _protected(match: ResolverMatch | None) -> bool:
    return match is not None and (match.namespace in PROTECTED_NAMESPACES or match.url_name in PROTECTED_URL_NAMES)


class SecondFactorMiddleware:
    """After TenantMiddleware (it needs the membership) and django-otp's OTPMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        user: Any = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        match = request.resolver_match
        if match is not None and match.url_name in OPEN_URL_NAMES:
            return None
        pending = request.session.get(PENDING)
        if pending is None:
            pending = request.session[PENDING] = totp_device(user) is not None
        if pending:
            return _redirect("two_factor_verify", request)
        membership = getattr(request, "membership", None)
        if _protected(match) and membership is not None and membership.role == Role.ADMIN:
            # An authenticator added in another session since this one asked: verify; else set one up.
            if totp_device(user) is not None:
                request.session[PENDING] = True
                return _redirect("two_factor_verify", request)
            return _redirect("two_factor_setup", request)
        return None
