"""E-mail deliveries in the admin: read-only, organization-scoped, filterable, failed ones retryable."""

import pytest
from django.core import mail

from auditlogs.models import AuditLog
from core.testing import PASSWORD, make_user
from notifications.models import DeliveryStatus, EmailDelivery
from notifications.tests.conftest import make_notification

pytestmark = pytest.mark.django_db

URL = "/admin/notifications/emaildelivery/"


@pytest.fixture
def staff_client(client, admin_user):
    assert client.login(username=admin_user.email, password=PASSWORD)
    return client


@pytest.fixture
def deliveries(alice, outsider):
    ours = make_notification(alice, title="Ours").email_delivery
    theirs = make_notification(outsider, title="Theirs").email_delivery
    EmailDelivery.objects.filter(pk=ours.pk).update(
        status=DeliveryStatus.FAILED, attempts=8, last_error="SMTPServerDisconnected: gone"
    )
    return ours, theirs


def test_list_is_scoped_and_shows_the_attempts(staff_client, deliveries):
    html = staff_client.get(URL).content.decode()
    assert "alice@acme-test.test" in html and "SMTPServerDisconnected" in html
    assert "olga@other-test.test" not in html
    assert "alice@acme-test.test" in staff_client.get(URL, {"status__exact": "failed"}).content.decode()
    assert "alice@acme-test.test" not in staff_client.get(URL, {"status__exact": "sent"}).content.decode()


def test_read_only_and_other_org_rows_unreachable(staff_client, deliveries):
    ours, theirs = deliveries
    page = staff_client.get(f"{URL}{ours.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    response = staff_client.post(f"{URL}{ours.pk}/change/", {"to_address": "x@evil.test"})
    assert response.status_code == 403
    assert staff_client.get(f"{URL}add/").status_code == 403
    assert staff_client.get(f"{URL}{theirs.pk}/change/").status_code in (302, 404)
    ours.refresh_from_db()
    assert ours.to_address == "alice@acme-test.test"


def test_retry_action_requeues_a_failed_delivery(staff_client, deliveries, django_capture_on_commit_callbacks):
    ours, theirs = deliveries
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            URL, {"action": "retry_failed", "_selected_action": [str(ours.pk), str(theirs.pk)]}, follow=True
        )
    assert response.status_code == 200
    ours.refresh_from_db()
    assert (ours.status, ours.attempts) == ("sent", 1)
    assert [m.to for m in mail.outbox] == [["alice@acme-test.test"]]
    assert AuditLog.objects.filter(action="email_delivery.retried", target_id=str(ours.pk)).count() == 1


def test_requester_without_admin_code_cannot_see_deliveries(client, org):
    user = make_user(org, "plain@acme-test.test", is_staff=True)
    assert client.login(username=user.email, password=PASSWORD)
    assert client.get(URL).status_code == 403
