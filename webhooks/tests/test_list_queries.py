"""Statements of webhooks/ and webhooks/{id}/deliveries/ do not grow with the rows listed (1, then 10)."""

import pytest
from django.utils import timezone

from core.testing import api_client
from webhooks import services
from webhooks.models import WebhookAttempt

pytestmark = pytest.mark.django_db

# The caller (JWT: the user with organization, department and roles), count, page; an endpoint
# change revokes every copy of the organization's users (accounts/auth_cache.py).
ENDPOINTS = 3
# The endpoint, count, page, the attempts of the page's deliveries (prefetched); the caller from
# the process's copy (warmed first).
DELIVERIES = 4


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_endpoints_list(hook_admin, endpoint_for, receiver, django_assert_num_queries):
    client = api_client(hook_admin)
    endpoint_for(f"{receiver.url}/0")
    with django_assert_num_queries(ENDPOINTS):
        assert len(listed(client, "/api/v1/webhooks/")) == 1
    for i in range(1, 10):
        endpoint_for(f"{receiver.url}/{i}")
    with django_assert_num_queries(ENDPOINTS):
        assert len(listed(client, "/api/v1/webhooks/")) == 10


def test_deliveries_list(org, hook_admin, endpoint_for, receiver, django_assert_num_queries):
    endpoint = endpoint_for(receiver.url)
    client = api_client(hook_admin)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on
    url = f"/api/v1/webhooks/{endpoint.pk}/deliveries/"

    def deliver_once():
        # A test event queued (its sending is after commit, never reached here), with one attempt logged.
        delivery = services.send_test_event(actor=hook_admin, endpoint=endpoint)
        WebhookAttempt.objects.create(
            organization=org, delivery=delivery, number=1, created_at=timezone.now(), succeeded=False,
            status_code=500, duration_ms=3, response_excerpt="not now",
        )  # fmt: skip

    deliver_once()
    with django_assert_num_queries(DELIVERIES):
        assert len(listed(client, url)) == 1
    for _ in range(9):
        deliver_once()
    with django_assert_num_queries(DELIVERIES):
        rows = listed(client, url)
    assert len(rows) == 10 and all(len(row["attempt_log"]) == 1 for row in rows)
