"""Webhooks against a real HTTP receiver on loopback: outbox, signing, safety, retries, rotation, auto-disable."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from auditlogs.models import AuditLog
from core.exceptions import ValidationFailed
from core.testing import api_client, make_user
from notifications.models import Notification
from requests.tests.factories import make_flow, user_step
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db


def submit(org, requester, approver, title="Laptop"):
    version = make_flow(org, [user_step(1, "Approve", approver)])
    response = api_client(requester).post(
        "/api/v1/requests/",
        {"workflow": version.definition.key, "title": title, "data": {"amount": 5, "vendor": "V"}, "submit": True},
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_events_are_written_with_the_change_and_sent_signed_after_commit(
    org, requester, receiver, endpoint_for, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver.url, events=["request.submitted", "task.assigned"])
    approver = make_user(org, "approver@acme-test.test")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = submit(org, requester, approver)
        assert receiver.requests == []  # nothing leaves before the commit
        assert sorted(WebhookDelivery.objects.values_list("event_type", flat=True)) == [
            "request.submitted",
            "task.assigned",
        ]
    for callback in callbacks:
        callback()
    assert len(receiver.requests) == 2
    hook = Webhook(endpoint.secret)
    for sent in receiver.requests:
        body = hook.verify(sent["body"], sent["headers"])  # the library accepts our signature
        assert set(body) == {"type", "timestamp", "data"}
        assert body["data"]["request"]["id"] == created["id"]
        assert sent["headers"]["content-type"] == "application/json"
    types = {b["type"]: b for b in receiver.bodies()}
    assert types["task.assigned"]["data"]["task"]["step"] == "Approve"
    assert types["request.submitted"]["data"]["actor"]["email"] == requester.email
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    attempt = WebhookAttempt.objects.get(delivery__event_type="task.assigned")
    assert (attempt.number, attempt.succeeded, attempt.status_code, attempt.response_excerpt) == (1, True, 200, "ok")
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(receiver.requests[0]["body"] + " ", receiver.requests[0]["headers"])


def test_a_rolled_back_change_sends_nothing(org, requester, receiver, endpoint_for, django_capture_on_commit_callbacks):
    endpoint_for(receiver.url)
    approver = make_user(org, "approver@acme-test.test")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        submit(org, requester, approver)
        raise RuntimeError("the change fails after its events were recorded")
    assert WebhookDelivery.objects.count() == 0 and receiver.requests == []


def test_only_subscribed_events_of_the_own_organization(
    org, other_org, requester, receiver, endpoint_for, django_capture_on_commit_callbacks
):
    mine = endpoint_for(receiver.url, events=["request.approved"])
    other_admin = make_user(other_org, "x@other-test.test", roles=["org_admin"])
    services.endpoint_create(actor=other_admin, organization=other_org, url=receiver.url, events=["*"])
    with django_capture_on_commit_callbacks(execute=True):
        submit(org, requester, make_user(org, "approver@acme-test.test"))
    assert WebhookDelivery.objects.count() == 0 and receiver.requests == []
    assert mine.subscribes_to("request.approved") and not mine.subscribes_to("request.submitted")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://0.0.0.0:9/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://192.168.0.10/hook",
        "ftp://example.com/hook",
        "http://user:pass@127.0.0.1/hook",
    ],
)
def test_private_loopback_and_link_local_destinations_are_refused(hook_admin, org, settings, url):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1"]
    with pytest.raises(ValidationFailed) as refused:
        services.endpoint_create(actor=hook_admin, organization=org, url=url, events=["*"])
    assert "url" in refused.value.details


def test_https_is_required_in_production(hook_admin, org, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    with pytest.raises(ValidationFailed) as refused:
        services.endpoint_create(actor=hook_admin, organization=org, url="http://127.0.0.1:9/hook", events=["*"])
    assert refused.value.details == {"url": ["Webhook URLs must use https."]}


def test_the_address_is_checked_again_at_send_time(
    org, receiver, endpoint_for, settings, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver.url)
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = []  # the operator removed loopback meanwhile
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_test_event(actor=None, endpoint=endpoint)
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.status == "pending" and "private, loopback or link-local" in delivery.last_error


def test_redirects_are_not_followed_and_only_an_excerpt_is_kept(
    org, receiver, endpoint_for, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver.url)
    receiver.script = [(302, "x" * 5000, {"Location": "http://127.0.0.1:9/elsewhere"})]
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_test_event(actor=None, endpoint=endpoint)
    delivery.refresh_from_db()
    attempt = delivery.attempt_log.get()
    assert len(receiver.requests) == 1  # nothing followed the redirect
    assert (delivery.status, attempt.status_code, attempt.error) == ("pending", 302, "HTTP 302")
    assert len(attempt.response_excerpt) == services.EXCERPT_CHARS


def test_a_slow_receiver_times_out(org, receiver, endpoint_for, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.delay = 2
    endpoint = endpoint_for(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_test_event(actor=None, endpoint=endpoint)
    delivery.refresh_from_db()
    assert "Timeout" in delivery.last_error and delivery.attempts == 1


def test_500_then_200_retries_with_backoff_and_succeeds_once(
    org, receiver, endpoint_for, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 30
    endpoint = endpoint_for(receiver.url)
    receiver.script = [(500, "boom", {})]
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_test_event(actor=None, endpoint=endpoint)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert 29 <= (delivery.next_attempt_at - timezone.now()).total_seconds() <= 31
    assert services.deliver(delivery_id=delivery.pk).result == "skipped"  # not due yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliver(delivery_id=delivery.pk).result == "succeeded"
    assert services.deliver(delivery_id=delivery.pk).result == "skipped"  # a duplicate task does nothing
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [delivery.message_id] * 2
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 200]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_backoff_doubles_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS, settings.WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = 30, 600
    assert [services.backoff_seconds(n) for n in (1, 2, 3, 4, 5, 6)] == [30, 60, 120, 240, 480, 600]


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    org, hook_admin, receiver, endpoint_for, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver.url)
    old = endpoint.secret
    rotated = services.rotate_secret(actor=hook_admin, endpoint=endpoint)
    assert rotated.secret != old and rotated.secret.startswith("whsec_")
    with django_capture_on_commit_callbacks(execute=True):
        services.send_test_event(actor=None, endpoint=rotated)
    sent = receiver.requests[-1]
    assert len(sent["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(sent["body"], sent["headers"])
    Webhook(rotated.secret).verify(sent["body"], sent["headers"])
    type(rotated).objects.filter(pk=rotated.pk).update(previous_secret_expires_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        services.send_test_event(actor=None, endpoint=rotated)
    sent = receiver.requests[-1]
    Webhook(rotated.secret).verify(sent["body"], sent["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(sent["body"], sent["headers"])
    assert AuditLog.objects.filter(action="webhook.secret_rotated").count() == 1


def test_an_endpoint_failing_for_too_long_is_disabled_and_the_admins_told(
    org, hook_admin, receiver, endpoint_for, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 72
    endpoint = endpoint_for(receiver.url)
    type(endpoint).objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - dt.timedelta(hours=73))
    receiver.script = [(503, "down", {})]
    with django_capture_on_commit_callbacks(execute=True):
        services.send_test_event(actor=None, endpoint=endpoint)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None and "HTTP 503" in endpoint.disabled_reason
    notice = Notification.objects.get(recipient=hook_admin, kind="webhook_disabled")
    assert endpoint.url in notice.title
    assert AuditLog.objects.filter(action="webhook.disabled").count() == 1
    # nothing more is sent to it; events are no longer recorded for it
    pending = WebhookDelivery.objects.create(
        organization=org, endpoint=endpoint, message_id="msg_x", event_type="request.approved", payload={},
        next_attempt_at=timezone.now(),
    )  # fmt: skip
    assert services.deliver(delivery_id=pending.pk).result == "failed"
    assert len(receiver.requests) == 1
    # re-enabled by hand: a fresh start
    services.endpoint_update(actor=hook_admin, endpoint=endpoint, is_active=True)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is None and endpoint.disabled_at is None


def test_redeliver_sends_the_same_event_again(
    org, hook_admin, receiver, endpoint_for, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.send_test_event(actor=hook_admin, endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        again = services.redeliver(actor=hook_admin, delivery=first)
    assert again.pk != first.pk and again.message_id == first.message_id
    assert [b["type"] for b in receiver.bodies()] == ["webhook.test", "webhook.test"]
    assert receiver.bodies()[0] == receiver.bodies()[1]


def test_the_sweep_sends_what_a_lost_task_left_behind(
    org, receiver, endpoint_for, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 0
    endpoint = endpoint_for(receiver.url)
    delivery = services.send_test_event(actor=None, endpoint=endpoint)  # its task never runs (no commit here)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):  # the sweep queues through the after-commit path
        assert services.sweep() == 1  # eager in tests: sent at once
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 1
    assert services.sweep() == 0


def test_decisions_and_comments_are_events_named_as_their_audit_actions(
    org, requester, receiver, endpoint_for, django_capture_on_commit_callbacks
):
    endpoint_for(receiver.url)
    approver = make_user(org, "approver@acme-test.test")
    with django_capture_on_commit_callbacks(execute=True):
        created = submit(org, requester, approver)
    task_id = WebhookDelivery.objects.get(event_type="task.assigned").payload["data"]["task"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        comment = api_client(requester).post(f"/api/v1/requests/{created['id']}/comments/", {"body": "Any news?"})
        assert comment.status_code == 201, comment.json()
    with django_capture_on_commit_callbacks(execute=True):
        decided = api_client(approver).post(f"/api/v1/tasks/{task_id}/approve/", {"comment": "fine"})
        assert decided.status_code == 200, decided.json()
    types = [b["type"] for b in receiver.bodies()]
    assert types == ["request.submitted", "task.assigned", "comment.added", "task.approved", "request.approved"]
    approved = receiver.bodies()[-1]["data"]
    assert approved["request"]["status"] == "approved" and approved["actor"]["email"] == approver.email
    assert set(AuditLog.objects.filter(action__in=types).values_list("action", flat=True)) == set(types)


def test_endpoint_changes_reach_the_next_change_in_any_process(org, requester, hook_admin, endpoint_for):
    """The active endpoints are kept in process per organization (issue 14), keyed by the
    organization's ``updated_at``: another process, whose entry predates an endpoint change,
    must not use it. Emulated by putting that process's entry back after the change."""
    approver = make_user(org, "approver@acme-test.test")
    submit(org, requester, approver, title="before")
    assert WebhookDelivery.objects.count() == 0
    stale = dict(services._SUBSCRIBERS)
    assert stale[org.pk][2] == ()  # cached: no subscriber

    endpoint = endpoint_for("http://127.0.0.1:9/hook", events=["request.submitted"])
    services._SUBSCRIBERS.update(stale)
    submit(org, requester, approver, title="created")
    assert list(WebhookDelivery.objects.values_list("endpoint_id", "event_type")) == [
        (endpoint.pk, "request.submitted")
    ]

    stale = dict(services._SUBSCRIBERS)
    services.endpoint_update(actor=hook_admin, endpoint=endpoint, is_active=False)
    services._SUBSCRIBERS.update(stale)
    submit(org, requester, approver, title="disabled")
    assert WebhookDelivery.objects.count() == 1
