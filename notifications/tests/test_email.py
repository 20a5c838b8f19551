"""E-mail deliveries: written with the notification, sent after commit, at most once, nothing lost."""

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from core.testing import make_user
from notifications import services
from notifications.models import Channel, DeliveryStatus, EmailDelivery, Kind, NotificationPreference
from notifications.tasks import send_email_delivery, send_pending_emails
from notifications.tests.conftest import celery_broker, make_notification
from requests.models import Request
from requests.tests.factories import make_flow, user_step

DEAD_SMTP = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": 1}
DEAD_BROKER = "redis://127.0.0.1:6390/0"


def notify_committed(django_capture_on_commit_callbacks, user, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return make_notification(user, **kwargs)


def age(delivery, seconds=60):
    EmailDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
def test_email_sent_after_commit_with_text_html_and_request_link(
    alice, bob, org, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://approvals.example.com"
    version = make_flow(org, [user_step(1, "Approve", bob)])
    request = Request.objects.create(
        organization=org, workflow_version=version, definition=version.definition, requester=alice,
        title="New laptop", reference="R-1",
    )  # fmt: skip
    n = notify_committed(
        django_capture_on_commit_callbacks, alice, kind=Kind.REQUEST_APPROVED, title="Approved: New laptop",
        body="Mark approved <it>.", request=request,
    )  # fmt: skip

    delivery = EmailDelivery.objects.get(notification=n)
    assert (delivery.status, delivery.attempts, delivery.to_address) == ("sent", 1, alice.email)
    assert delivery.sent_at and delivery.last_attempt_at and delivery.last_error == ""
    [message] = mail.outbox
    assert message.subject == "Approved: New laptop" and message.to == [alice.email]
    link = f"https://approvals.example.com/admin/requests/request/{request.id}/change/"
    assert "your request has been approved" in message.body
    assert link in message.body and "Mark approved <it>." in message.body  # plain text is not HTML-escaped
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert f'href="{link}"' in html and "Mark approved &lt;it&gt;." in html
    assert message.extra_headers["X-Notification-Kind"] == "request_approved"


@pytest.mark.django_db
@pytest.mark.parametrize("kind", Kind.values)
def test_every_kind_has_templates(alice, kind, django_capture_on_commit_callbacks):
    notify_committed(django_capture_on_commit_callbacks, alice, kind=kind, title=f"About {kind}")
    [message] = mail.outbox
    assert message.subject == f"About {kind}" and message.alternatives
    assert f"About {kind}" in message.body


@pytest.mark.django_db
def test_email_preference_off_writes_no_delivery(alice, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=alice, kind=Kind.TASK_ASSIGNED, channel=Channel.EMAIL, enabled=False)
    n = notify_committed(django_capture_on_commit_callbacks, alice)
    assert n.read_at is None  # in-app still on
    assert not EmailDelivery.objects.exists() and mail.outbox == []
    notify_committed(django_capture_on_commit_callbacks, alice, kind=Kind.TASK_REMINDER)
    assert EmailDelivery.objects.count() == 1 and len(mail.outbox) == 1


@pytest.mark.django_db
def test_no_delivery_for_an_inactive_recipient(org, django_capture_on_commit_callbacks):
    gone = make_user(org, "gone@acme-test.test")
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    notify_committed(django_capture_on_commit_callbacks, gone)
    assert not EmailDelivery.objects.exists()


@pytest.mark.django_db
def test_a_repeated_task_sends_once(alice, django_capture_on_commit_callbacks):
    n = notify_committed(django_capture_on_commit_callbacks, alice)
    delivery_id = str(n.email_delivery.id)
    assert len(mail.outbox) == 1
    assert send_email_delivery.apply(args=[delivery_id]).result == "skipped"
    assert services.deliver_email(delivery_id=delivery_id).result == "skipped"
    assert len(mail.outbox) == 1
    assert EmailDelivery.objects.get(pk=delivery_id).attempts == 1


@pytest.mark.django_db
def test_failures_are_recorded_backed_off_and_given_up(alice, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_MAX_ATTEMPTS = 2
    settings.EMAIL_RETRY_BACKOFF_SECONDS = 30
    for key, value in DEAD_SMTP.items():
        setattr(settings, key, value)
    n = notify_committed(django_capture_on_commit_callbacks, alice)  # eager task: first attempt fails
    delivery = EmailDelivery.objects.get(notification=n)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "ConnectionRefusedError" in delivery.last_error
    assert 25 <= (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds() <= 31

    age(delivery)
    assert services.send_pending_emails() == {}  # backoff not elapsed
    EmailDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.send_pending_emails() == {"failed": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
    assert services.send_pending_emails() == {}  # given up: the sweep leaves it alone

    # An operator retries it from the admin once mail works again.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        services.retry_failed_delivery(actor=None, delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == "sent" and len(mail.outbox) == 1


def test_backoff_is_exponential_and_capped(settings):
    settings.EMAIL_RETRY_BACKOFF_SECONDS = 30
    settings.EMAIL_RETRY_BACKOFF_MAX_SECONDS = 600
    assert [services.backoff_seconds(a) for a in range(1, 7)] == [30, 60, 120, 240, 480, 600]


@pytest.mark.django_db
def test_sweep_leaves_young_deliveries_to_their_task(alice, settings):
    make_notification(alice)  # on_commit never runs here: the task was "lost"
    delivery = EmailDelivery.objects.get()
    assert services.send_pending_emails() == {}
    age(delivery, settings.EMAIL_PENDING_GRACE_SECONDS + 1)
    assert send_pending_emails.apply().result == {"sent": 1}
    assert len(mail.outbox) == 1
    assert services.send_pending_emails() == {}


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_send_exactly_once(alice):
    make_notification(alice)  # committed: its eager task already sent it once
    delivery = EmailDelivery.objects.get()
    # Make it pending again to race eight senders on it.
    EmailDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING, attempts=0, sent_at=None)
    mail.outbox.clear()
    barrier, results = threading.Barrier(8), []

    def worker():
        try:
            barrier.wait()
            results.append(services.deliver_email(delivery_id=delivery.pk).result)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("sent") == 1, results
    assert set(results) <= {"sent", "busy", "skipped"}
    assert len(mail.outbox) == 1
    assert EmailDelivery.objects.get().attempts == 1


@pytest.mark.django_db
def test_an_unknown_or_malformed_delivery_id_sends_nothing(alice):
    for delivery_id in ("6f1d2c3b-0000-4000-8000-000000000000", "not-a-uuid", ""):
        assert services.deliver_email(delivery_id=delivery_id).result == "missing"
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_commit_then_the_sweep_sends_once(alice, caplog):
    with celery_broker(DEAD_BROKER):
        started = time.monotonic()
        n = make_notification(alice)  # commits; queuing the task fails after commit and is only logged
        elapsed = time.monotonic() - started
    assert elapsed < 15
    print(f"broker down: notify + commit + failed enqueue took {elapsed:.2f}s")
    assert "after-commit delivery failed: task notifications.tasks.send_email_deliveries" in caplog.text
    delivery = EmailDelivery.objects.get(notification=n)
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert mail.outbox == []

    # The broker is back: beat runs the periodic sweep.
    age(delivery)
    assert send_pending_emails.apply().result == {"sent": 1}
    assert send_pending_emails.apply().result == {}
    assert send_email_delivery.apply(args=[str(delivery.pk)]).result == "skipped"  # the lost task, if it ever ran
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


@pytest.mark.django_db
def test_the_request_link_opens_the_requests_page_for_staff_in_a_browser(
    org, alice, bob, admin_user, settings, client, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://approvals.example.com/"
    version = make_flow(org, [user_step(1, "Approve", bob)])
    request = Request.objects.create(
        organization=org, workflow_version=version, definition=version.definition, requester=alice,
        title="New monitor", reference="R-2",
    )  # fmt: skip
    notify_committed(
        django_capture_on_commit_callbacks, admin_user, kind=Kind.TASK_ASSIGNED, title="Approve", request=request
    )
    [message] = mail.outbox
    [link] = [word for word in message.body.split() if word.startswith("https://approvals.example.com/admin/")]
    client.force_login(admin_user)
    page = client.get(link.removeprefix("https://approvals.example.com"), HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert "New monitor" in page.content.decode()
