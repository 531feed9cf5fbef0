from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import views

tenant_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("properties/", views.property_list, name="property_list"),
    path("properties/<int:property_id>/", views.property_detail, name="property_detail"),
    path("bookings/", views.booking_list, name="booking_list"),
    path("bookings/<int:booking_id>/", views.booking_detail, name="booking_detail"),
    path("settings/", views.settings_home, name="settings"),
    path("", include("locks.urls")),
    path("providers/", include("providers.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("t/<slug:tenant_slug>/", include(tenant_patterns)),
    path("api/", include("portal.api_urls")),
    path("webhooks/", include("providers.webhook_urls")),
    path("django-admin/", admin.site.urls),
]
