"""Provider account pages, included at /t/<slug>/providers/."""

from __future__ import annotations

from django.urls import path

from portal import account_views as views
from portal import oauth_views

app_name = "providers"
urlpatterns = [
    path("", views.account_list, name="account_list"),
    path("new/", views.account_create, name="account_create"),
    path("<uuid:account_uuid>/", views.account_detail, name="account_detail"),
    path("<uuid:account_uuid>/edit/", views.account_edit, name="account_edit"),
    path("<uuid:account_uuid>/test/", views.account_test, name="account_test"),
    path("<uuid:account_uuid>/import/", views.account_import, name="account_import"),
    path("<uuid:account_uuid>/virtual-lock/", views.account_virtual_lock, name="account_virtual_lock"),
    path("<uuid:account_uuid>/webhook-secret/", views.account_webhook_secret, name="account_webhook_secret"),
    path("<uuid:account_uuid>/connect/", oauth_views.account_connect, name="account_connect"),
]
