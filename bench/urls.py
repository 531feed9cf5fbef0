"""The project's URLs plus one bare view, the baseline for webhook intake throughput."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from portal.urls import urlpatterns as project_patterns


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare/", bare), *project_patterns]
