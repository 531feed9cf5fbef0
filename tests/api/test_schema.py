"""The OpenAPI schema, the offline docs, and schemathesis fuzzing every operation against the schema."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.config import SchemathesisConfig

# The coverage phase enumerates every boundary value of every field regardless of max_examples; the
# examples and fuzzing phases with a few cases per operation keep this under a minute.
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    get_wsgi_application(),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
)


def test_it_serves_the_schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/bookings/by-ref/{external_ref}/" in response.content


def test_it_serves_swagger_ui_from_the_sidecar_not_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()


@pytest.fixture
def fuzz_headers(keys):
    # Requests go straight to the WSGI app, not through Django's test client, so do what the client
    # does: keep the test's database connection (and its transaction) open across requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {keys.alice}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.django_db
def test_the_api_matches_its_schema_and_never_500s(case, fuzz_headers, world):
    case.call_and_validate(headers=fuzz_headers, checks=[not_a_server_error, response_schema_conformance])
