"""/api/: the versioned REST API, its OpenAPI schema and the Swagger UI (served from the sidecar, no CDN)."""

from __future__ import annotations

from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
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
    # The split view serves Swagger UI's start-up script as a file (no inline script); Swagger UI itself
    # sets inline styles and shows data: images, so this page alone allows those.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"], "img-src": ["data:"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema")
        ),
        name="docs",
    ),
]
