"""/api/: the versioned REST API, its OpenAPI schema and the Swagger UI (served from the sidecar, no CDN)."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from portal.api import views

router = DefaultRouter()
router.register("properties", views.PropertyViewSet, basename="property")
router.register("locks", views.LockViewSet, basename="lock")
router.register("bookings", views.BookingViewSet, basename="booking")
router.register("access-codes", views.AccessCodeViewSet, basename="access-code")
router.register("commands", views.LockCommandViewSet, basename="command")
router.register("issues", views.LockIssueViewSet, basename="issue")

app_name = "api"
urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
