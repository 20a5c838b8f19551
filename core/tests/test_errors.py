import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from core import views
from core.exceptions import Conflict
from core.testing import api_client, error_code

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_json_404(requester):
    response = api_client(requester).get("/api/v1/does-not-exist/")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_method_not_allowed_is_envelope(requester):
    response = api_client(requester).delete("/api/v1/auth/me/")
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


def test_malformed_json_is_parse_error(admin_user):
    response = api_client(admin_user).generic("POST", "/api/v1/holidays/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "parse_error"


def test_bad_uuid_in_path_is_404(admin_user):
    response = api_client(admin_user).get("/api/v1/departments/not-a-uuid/")
    assert response.status_code == 404


class _Boom(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("kaboom")


class _Busy(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise Conflict("Busy.", code="busy", details={"x": ["y"]})


def test_unhandled_exception_in_api_is_500_envelope():
    response = _Boom.as_view()(APIRequestFactory().get("/api/v1/boom/"))
    assert response.status_code == 500
    assert response.data == {"error": {"code": "server_error", "message": "Internal server error.", "details": {}}}
    assert "kaboom" not in str(response.data)


def test_application_error_carries_code_and_details():
    response = _Busy.as_view()(APIRequestFactory().get("/api/v1/busy/"))
    assert response.status_code == 409
    assert response.data["error"] == {"code": "busy", "message": "Busy.", "details": {"x": ["y"]}}


def test_django_500_handler_under_api_is_json():
    response = views.handler500(RequestFactory().get("/api/v1/anything/"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"


def test_request_id_is_echoed_or_generated(requester):
    client = api_client(requester)
    echoed = client.get("/api/v1/auth/me/", HTTP_X_REQUEST_ID="abc-123")
    assert echoed["X-Request-ID"] == "abc-123"
    generated = client.get("/api/v1/auth/me/", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert generated["X-Request-ID"] != "bad id with spaces\n" and len(generated["X-Request-ID"]) == 32


def test_pagination_shape_and_max(admin_user):
    body = api_client(admin_user).get("/api/v1/roles/?page_size=1000").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unsafe_methods_on_unknown_api_paths_are_json_404_not_csrf_html(method):
    """Django's CSRF middleware answered POST /api/v1/<unknown>/ with its HTML 403 page (issue 19.8)."""
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)("/api/v1/no-such-thing/", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert error_code(response) == "not_found"


def test_csrf_failure_under_api_is_the_envelope_and_the_admin_keeps_its_page():
    client = Client(enforce_csrf_checks=True)
    api = views.csrf_failure(RequestFactory().post("/api/v1/anything/"), reason="CSRF cookie not set.")
    assert api.status_code == 403 and api["Content-Type"].startswith("application/json")
    admin = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert admin.status_code == 403 and admin["Content-Type"].startswith("text/html")
