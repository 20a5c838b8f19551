"""/api/v1/webhooks/ and webhook-deliveries/: CRUD, the secret shown once, the delivery log, redeliver, test."""

import pytest

from auditlogs.models import AuditLog
from core.testing import api_client, make_user
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_create_shows_the_secret_once_and_never_again(hook_admin, receiver):
    client = api_client(hook_admin)
    created = client.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["request.approved", "task.assigned"]})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["request.approved", "task.assigned"]
    assert body["is_active"] is True
    shown = client.get(f"/api/v1/webhooks/{body['id']}/").json()
    assert "secret" not in shown and shown["url"] == receiver.url
    assert all("secret" not in e for e in client.get("/api/v1/webhooks/").json()["results"])
    rotated = client.post(f"/api/v1/webhooks/{body['id']}/rotate-secret/")
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (body["secret"], None)
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert AuditLog.objects.filter(action__in=["webhook.created", "webhook.secret_rotated"]).count() == 2
    assert body["secret"] not in str(list(AuditLog.objects.values_list("changes", flat=True)))


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "http://10.0.0.5/x", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:9/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1:9/x", "events": ["request.exploded"]}, "events"),
        ({"url": "http://127.0.0.1:9/x", "events": "*"}, "events"),
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(hook_admin, body, field):
    response = api_client(hook_admin).post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]
    assert WebhookEndpoint.objects.count() == 0


def test_without_webhooks_manage_nothing_is_seen_or_changed(org, hook_admin, endpoint_for, receiver):
    endpoint = endpoint_for(receiver.url)
    auditor = make_user(org, "aud@acme-test.test", roles=["auditor"])
    client = api_client(auditor)
    assert client.get("/api/v1/webhooks/").status_code == 403
    assert client.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["*"]}).status_code == 403
    assert client.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"is_active": False}).status_code == 403
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/test/").status_code == 403
    assert WebhookEndpoint.objects.get().is_active and WebhookDelivery.objects.count() == 0


def test_another_organizations_endpoint_is_not_found(other_admin, endpoint_for, receiver):
    endpoint = endpoint_for(receiver.url)
    client = api_client(other_admin)
    assert client.get(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_delivery_log_test_event_and_redeliver(
    hook_admin, endpoint_for, receiver, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    endpoint = endpoint_for(receiver.url)
    client = api_client(hook_admin)
    receiver.script = [(500, "not now", {})]
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"/api/v1/webhooks/{endpoint.pk}/test/")
    assert sent.status_code == 202 and sent.json()["event_type"] == "webhook.test"
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(f"/api/v1/webhook-deliveries/{sent.json()['id']}/redeliver/")
    assert again.status_code == 202 and again.json()["message_id"] == sent.json()["message_id"]
    with django_assert_max_num_queries(8):
        log = client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/")
    assert log.status_code == 200
    rows = {row["id"]: row for row in log.json()["results"]}
    first, second = rows[sent.json()["id"]], rows[again.json()["id"]]
    assert first["status"] == "pending" and first["attempt_log"][0]["status_code"] == 500
    assert first["attempt_log"][0]["response_excerpt"] == "not now"
    assert second["status"] == "succeeded" and second["attempt_log"][0]["status_code"] == 200
    assert {"duration_ms", "number", "succeeded", "error"} <= set(second["attempt_log"][0])


def test_update_and_delete(hook_admin, endpoint_for, receiver):
    endpoint = endpoint_for(receiver.url)
    client = api_client(hook_admin)
    patched = client.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"events": ["comment.added"], "is_active": False})
    assert patched.status_code == 200 and patched.json()["events"] == ["comment.added"]
    assert client.delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert AuditLog.objects.filter(action="webhook.deleted").count() == 1
