import pytest
from django.test import override_settings

from core.testing import error_code


def test_live(client):
    assert client.get("/health/live/").json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_database_and_redis(client):
    response = client.get("/health/ready/")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:6399/0")
def test_ready_reports_dead_redis_with_503(client):
    response = client.get("/health/ready/")
    assert response.status_code == 503
    assert error_code(response) == "service_unavailable"
    assert response.json()["error"]["details"] == {"database": "ok", "redis": "down"}
