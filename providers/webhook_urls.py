from __future__ import annotations

from django.urls import path

from providers import webhook_views

app_name = "webhooks"
urlpatterns = [
    path("<slug:vendor>/<uuid:account_uuid>/", webhook_views.receive, name="receive"),
]
