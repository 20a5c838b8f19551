"""The admin pages of webhooks: scoped, secret shown once on create, test event and redeliver actions."""

import pytest
from django.test import Client

from core.testing import make_user
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def admin_client(user):
    client = Client()
    client.force_login(user)
    return client


def test_create_test_event_and_redeliver_through_the_admin(hook_admin, receiver, django_capture_on_commit_callbacks):
    client = admin_client(hook_admin)
    created = client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"url": receiver.url, "events": '["*"]', "is_active": "on"},
        follow=True,
    )
    assert created.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in created.content.decode()  # shown this once
    assert endpoint.secret not in client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/webhooks/webhookendpoint/",
            {"action": "send_test_event", "_selected_action": [str(endpoint.pk)]},
        )
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded"
    page = client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "webhook.test" in page and "200" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/webhooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [str(delivery.pk)]})
    assert WebhookDelivery.objects.count() == 2 and len(receiver.requests) == 2


def test_staff_without_webhooks_manage_see_nothing(org, hook_admin, endpoint_for, receiver):
    endpoint_for(receiver.url)
    designer = make_user(org, "designer@acme-test.test", roles=["workflow_designer"], is_staff=True)
    client = admin_client(designer)
    assert client.get("/admin/webhooks/webhookendpoint/").status_code == 403
    assert client.get("/admin/webhooks/webhookdelivery/").status_code == 403
