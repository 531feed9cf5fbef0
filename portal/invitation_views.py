"""The invitee's side of an invitation: /invitations/<token>/ (DESIGN §9).

Whoever opens the emailed link sees which team invites them. An account that already has a password
accepts only while signed in as that account; an address without one chooses a password here, which
the link allows because it was sent to that address (like a password-reset email).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from portal import members
from portal.models import Invitation, Membership

TEMPLATE = "registration/invitation.html"
# ModelBackend directly: the user was just created or proved by the link, not authenticated by password.
BACKEND = "django.contrib.auth.backends.ModelBackend"


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    messages.success(request, f"Welcome to {membership.tenant}.")
    return redirect("dashboard", tenant_slug=membership.tenant.slug)


def _signed_in(request: HttpRequest, user: User, invitation: Invitation) -> HttpResponse:
    if user.email.lower() != invitation.email:
        context = {"invitation": invitation, "state": "other_account"}
        return render(request, TEMPLATE, context, status=403)
    if request.method == "POST":
        try:
            membership = members.invitation_accept(
                invitation=invitation, user=user, now=timezone.now()
            )
        except ValidationError:
            return render(request, TEMPLATE, {"state": "invalid"}, status=404)
        return _joined(request, membership)
    return render(request, TEMPLATE, {"invitation": invitation, "state": "confirm"})


def _choose_password(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    account = members.invitation_account(invitation)
    User = get_user_model()
    # An unsaved user lets the similarity validator compare the password with the address.
    form = SetPasswordForm(
        account or User(username=invitation.email, email=invitation.email), request.POST or None
    )
    if request.method == "POST" and form.is_valid():
        try:
            user = members.invitation_accept_with_password(
                invitation=invitation, password=form.cleaned_data["new_password1"], now=timezone.now()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, user, backend=BACKEND)
            return _joined(
                request, Membership.objects.select_related("tenant").get(user=user, tenant=invitation.tenant)
            )
    status = 400 if request.method == "POST" else 200
    return render(request, TEMPLATE, {"invitation": invitation, "state": "new", "form": form}, status=status)


@never_cache
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = members.invitation_for_token(token=token, now=timezone.now())
    if invitation is None:
        return render(request, TEMPLATE, {"state": "invalid"}, status=404)
    if request.user.is_authenticated:
        return _signed_in(request, request.user, invitation)
    account = members.invitation_account(invitation)
    if account is not None and account.has_usable_password():
        if request.method == "POST":
            return redirect_to_login(request.path)
        return render(request, TEMPLATE, {"invitation": invitation, "state": "sign_in"})
    try:
        return _choose_password(request, invitation)
    except PermissionDenied:
        return redirect_to_login(request.path)
