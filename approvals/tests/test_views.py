"""Task and delegation endpoints name people by id or by e-mail."""

import pytest

from approvals.tests.test_engine import open_task, submit
from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_user
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def test_reassign_accepts_an_email_in_any_case(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    task = open_task(submit(p.alice, v)["id"])
    r = api_client(p.mark).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": p.bob.email.upper()}, format="json")
    assert r.status_code == 200, r.json()
    assert {a["user"] for a in r.json()["assignees"] if a["is_active"]} == {str(p.bob.pk)}
    by_admin = api_client(p.admin).post(
        f"/api/v1/tasks/{task.pk}/reassign/", {"user": p.mark.email, "from_user": p.bob.email}, format="json"
    )
    assert by_admin.status_code == 200, by_admin.json()
    assert {a["user"] for a in by_admin.json()["assignees"] if a["is_active"]} == {str(p.mark.pk)}


def test_an_email_outside_the_org_or_not_an_email_changes_nothing(org, other_org, p):
    stranger = make_user(other_org, "stranger@other-test.test")
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    task = open_task(submit(p.alice, v)["id"])
    audit_rows = AuditLog.objects.count()
    client = api_client(p.mark)
    for value, message in (
        (stranger.email, "Unknown user."),
        ("nobody@acme-test.test", "Unknown user."),
        ("mark", "Enter a user id (UUID) or an e-mail address."),
        (42, "Enter a user id (UUID) or an e-mail address."),
    ):
        r = client.post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": value}, format="json")
        assert r.status_code == 400 and error_code(r) == "validation_error"
        assert r.json()["error"]["details"]["user"] == [message]
    assert set(task.assignments.filter(is_active=True).values_list("assignee_id", flat=True)) == {p.mark.pk}
    assert AuditLog.objects.count() == audit_rows


def test_delegation_to_an_email(org, p):
    body = {"to_user": p.bob.email, "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-08T00:00:00Z"}
    r = api_client(p.mark).post("/api/v1/delegations/", body, format="json")
    assert r.status_code == 201, r.json()
    assert (r.json()["to_user"], r.json()["to_user_email"]) == (str(p.bob.pk), p.bob.email)
    moved = api_client(p.mark).patch(f"/api/v1/delegations/{r.json()['id']}/", {"to_user": p.carl.email}, format="json")
    assert moved.status_code == 200 and moved.json()["to_user"] == str(p.carl.pk)
