"""POST /webhooks/<vendor>/<account uuid>/ — signed by the vendor, so no CSRF; answered fast."""

from __future__ import annotations

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from providers.webhooks import WebhookRejected, webhook_receive


@csrf_exempt
@require_POST
def receive(request: HttpRequest, vendor: str, account_uuid: UUID) -> HttpResponse:
    headers = {key.lower(): value for key, value in request.headers.items()}
    # Signature schemes that sign the request target (SmartThings) need the path as we received it.
    headers["x-lockstep-request-path"] = request.get_full_path()
    try:
        result = webhook_receive(vendor=vendor, account_uuid=account_uuid, body=request.body, headers=headers)
    except WebhookRejected as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    if result is None:
        raise Http404("No such webhook endpoint.")
    if result.reply is not None:
        return JsonResponse(result.reply.body, status=result.reply.status)
    return JsonResponse({"ok": True, "duplicate": not result.created}, status=200)
