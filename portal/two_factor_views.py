"""Two-factor pages under the user menu (portal/two_factor.py has the rules): status, set up, verify,
new recovery codes, turn off, and "sign out my other sessions"."""

from __future__ import annotations

import base64
from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.models import Device

from portal import two_factor
from portal.models import Membership, RecoveryCodeDevice, Role


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code", max_length=40, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
    )


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return "/account/two-factor/"


def _throttled(device: Device | None, *, prefix: str = "Too many wrong codes.") -> str:
    """Why `device` refuses codes right now ('' when it does not): django-otp's back-off after failures."""
    if device is None:
        return ""
    allowed, info = device.verify_is_allowed()
    if allowed:
        return ""
    until = (info or {}).get("locked_until")
    return f"{prefix} " + (f"Wait until {until:%H:%M:%S} UTC before the next try." if until else "Try again later.")


def _is_admin(user: Any) -> bool:
    return Membership.objects.filter(user=user, role=Role.ADMIN).exists()


@login_required
@never_cache
def two_factor_home(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    return render(request, "registration/two_factor.html", {
        "device": two_factor.totp_device(user),
        "recovery_left": two_factor.recovery_codes_left(user=user),
        "required": _is_admin(user),
    })


@login_required
@never_cache
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if two_factor.totp_device(user) is not None:
        return redirect("two_factor_home")
    device = two_factor.totp_device_pending(user=user)
    form = CodeForm(request.POST or None)
    error = _throttled(device)
    if request.method == "POST" and form.is_valid() and not error:
        if device.verify_token(form.cleaned_data["code"].replace(" ", "")):
            codes = two_factor.totp_confirm(device=device)
            otp_login(request, device)
            request.session[two_factor.PENDING] = False
            return render(request, "registration/two_factor_codes.html", {"codes": codes, "next": _next(request)})
        error = _throttled(device, prefix="That code is not right (is your phone's clock right?).") or "That code is not right."
    qr = segno.make(device.config_url, error="m").svg_inline(scale=5, dark="#111", light="#fff")
    return render(request, "registration/two_factor_setup.html", {
        "form": form, "error": error, "qr_svg": mark_safe(qr),  # noqa: S308 segno's own markup, no user text
        "secret": base64.b32encode(device.bin_key).decode(), "next": _next(request),
    })


@login_required
@never_cache
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    device = two_factor.totp_device(user)
    if device is None:
        return redirect("two_factor_setup")
    if user.is_verified():
        return redirect(_next(request))
    recovery = RecoveryCodeDevice.objects.filter(user=user).first()
    form = CodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].replace(" ", "")
        # Six digits are the app's code; anything longer is a recovery code. Each device throttles itself.
        chosen: Device | None = device if code.isdigit() and len(code) <= 8 else recovery
        error = _throttled(chosen)
        if not error and chosen is not None and chosen.verify_token(code):
            otp_login(request, chosen)
            request.session[two_factor.PENDING] = False
            if chosen is recovery:
                messages.warning(request, f"Recovery code used: {two_factor.recovery_codes_left(user=user)} left.")
            return redirect(_next(request))
        error = error or _throttled(chosen, prefix="That code is not right.") or "That code is not right."
    return render(request, "registration/two_factor_verify.html", {"form": form, "error": error,
                                                                   "next": _next(request)})


@login_required
@require_POST
@never_cache
def recovery_codes_new(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if two_factor.totp_device(user) is None or not user.is_verified():
        return redirect("two_factor_home")
    codes = two_factor.recovery_codes_issue(user=user)
    return render(request, "registration/two_factor_codes.html", {"codes": codes, "next": "/account/two-factor/"})


@login_required
@require_POST
def two_factor_off(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if user.is_verified():
        two_factor.two_factor_disable(user=user)
        request.session[two_factor.PENDING] = False
        messages.info(request, "Two-factor sign-in is off." + (
            " As an admin you will be asked to set it up again before settings that need it." if _is_admin(user)
            else ""))
    return redirect("two_factor_home")


@login_required
@require_POST
def sessions_end(request: HttpRequest) -> HttpResponse:
    ended = two_factor.sessions_end_others(user=request.user, keep_session_key=request.session.session_key)
    messages.info(request, f"Signed out of {ended} other session(s).")
    return redirect("two_factor_home")
