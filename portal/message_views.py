"""Guest messages on the pages (issue 13): "Send now" and "Resend" on the booking page (staff and admins;
owners read), the templates with a preview on a sample stay (admins), and Twilio's signed delivery
reports. Another tenant's ids are the same 404 as missing ones."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from twilio.request_validator import RequestValidator

from portal.http import TenantRequest
from portal.message_templates import (
    BUILT_IN,
    PLACEHOLDERS,
    message_render,
    sample_stay,
    template_words,
    unknown_placeholders,
)
from portal.messages import message_resend, message_send_now
from portal.models import (
    Booking,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    MessageTemplate,
    Property,
    Tenant,
)
from portal.permissions import admin_required, editor_required, visible_properties
from portal.query_params import parse_id
from portal.tenancy import get_for_tenant

SENDABLE_NOW = (MessageKind.CODE_DELIVERY, MessageKind.INSTRUCTIONS)
# Twilio's delivery states → ours; the others (queued, sending, sent, delivered…) leave a sent message sent.
TWILIO_STATES = {"undelivered": MessageStatus.BOUNCED, "failed": MessageStatus.FAILED}


def _booking(request: TenantRequest, booking_id: int) -> Booking:
    return get_for_tenant(Booking.objects.filter(property__in=visible_properties(request))
                          .select_related("property", "tenant"), request.tenant, pk=booking_id)


def _back(request: TenantRequest, booking: Booking) -> HttpResponse:
    return redirect("booking_detail", tenant_slug=request.tenant.slug, booking_id=booking.pk)


@editor_required
@require_POST
def message_send_now_view(request: TenantRequest, booking_id: int) -> HttpResponse:
    booking = _booking(request, booking_id)
    kind = request.POST.get("kind", MessageKind.CODE_DELIVERY)
    if kind not in SENDABLE_NOW:
        messages.error(request, "That message cannot be sent from here.")
        return _back(request, booking)
    try:
        deliveries = message_send_now(booking=booking, kind=kind, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        sent = [d.message for d in deliveries if d.message.status == MessageStatus.SENT]
        failed = [d.message for d in deliveries if d.message.status != MessageStatus.SENT]
        if sent:
            messages.success(request, f"{MessageKind(kind).label} sent by {', '.join(m.channel for m in sent)}.")
        for message in failed:
            messages.error(request, f"Not sent by {message.channel}: {message.error}")
    return _back(request, booking)


@editor_required
@require_POST
def message_resend_view(request: TenantRequest, booking_id: int, message_id: int) -> HttpResponse:
    booking = _booking(request, booking_id)
    message = get_for_tenant(Message.objects.filter(booking=booking).select_related("booking__property"),
                             request.tenant, pk=message_id)
    try:
        delivery = message_resend(message=message, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if delivery.message.status == MessageStatus.SENT:
            messages.success(request, f"{delivery.message.get_kind_display()} sent again by {delivery.message.channel}.")
        else:
            messages.error(request, f"Not sent: {delivery.message.error}")
    return _back(request, booking)


class TemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["property", "kind", "channel", "language", "subject", "body"]
        help_texts = {
            "property": "Blank: every property of the tenant (a property's own template wins).",
            "language": "The guest's language code, e.g. en, pt, fr (bookings carry theirs).",
            "subject": "Email only.",
            "body": "Placeholders: " + " ".join("{" + name + "}" for name in PLACEHOLDERS),
        }

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["property"]).queryset = Property.objects.for_tenant(tenant)
        self.fields["property"].required = False

    def clean(self) -> dict:
        data = super().clean() or {}
        for name in ("subject", "body"):
            unknown = unknown_placeholders(data.get(name) or "")
            if unknown:
                self.add_error(name, "Unknown placeholder: " + ", ".join("{" + u + "}" for u in unknown))
        if "{doors}" in (data.get("subject") or ""):
            self.add_error("subject", "Door codes go in the body: a subject is shown in mail lists and notifications.")
        return data


@admin_required
@require_http_methods(["GET", "POST"])
def message_templates(request: TenantRequest) -> HttpResponse:
    """Each kind × channel as the guest would read it for a sample stay, and a form to write one."""
    tenant = request.tenant
    prop = Property.objects.for_tenant(tenant).filter(pk=parse_id(request.GET.get("property")) or 0).first()
    form = TemplateForm(request.POST or None, tenant=tenant)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        MessageTemplate.objects.update_or_create(
            tenant=tenant, property=data["property"], kind=data["kind"], channel=data["channel"],
            language=(data["language"] or "en").strip().lower(),
            defaults={"subject": data["subject"], "body": data["body"]})
        messages.success(request, "Template saved.")
        return redirect("message_templates", tenant_slug=tenant.slug)
    asked = (request.GET.get("language") or "").lower()
    language = "".join(ch for ch in asked if ch.isascii() and (ch.isalpha() or ch == "-"))[:8] or "en"
    stay = sample_stay(tenant, prop)
    previews = []
    for kind, channel in BUILT_IN:
        words = template_words(tenant=tenant, prop=prop, kind=kind, channel=channel, language=language)
        text = message_render(words, stay, channel=channel)
        previews.append({"kind": MessageKind(kind).label, "channel": MessageChannel(channel).label,
                         "subject": text.subject, "body": text.body})
    return render(request, "settings/message_templates.html", {
        "form": form, "previews": previews, "property": prop, "language": language,
        "properties": Property.objects.for_tenant(tenant).filter(archived_at__isnull=True),
        "templates": MessageTemplate.objects.for_tenant(tenant).select_related("property"),
    })


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest, message_id: int) -> HttpResponse:
    """Twilio's delivery report for one text, signed with the auth token (X-Twilio-Signature)."""
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    signature = request.headers.get("X-Twilio-Signature", "")
    token = settings.TWILIO_AUTH_TOKEN
    if not token or not RequestValidator(token).validate(url, request.POST.dict(), signature):
        return HttpResponse(status=403)
    sid = request.POST.get("MessageSid", "")
    status = TWILIO_STATES.get(request.POST.get("MessageStatus", ""))
    if sid and status is not None:
        Message.objects.filter(pk=message_id, provider_id=sid, channel=MessageChannel.SMS).exclude(
            status=status).update(status=status, error=f"Twilio reports the text {status} "
                                  f"(error {request.POST.get('ErrorCode', 'none')[:10]}).")
    return HttpResponse(status=204)
