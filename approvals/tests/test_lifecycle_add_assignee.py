"""Ad-hoc approvers (issue 16.3): POST /tasks/{id}/assignees/ joins a person to a pending task."""

import pytest

from approvals.models import Assignment, TaskStatus
from approvals.tests.test_engine import decide, open_task, status, submit
from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_user
from requests.tests.factories import People, make_flow, role_step, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def add(actor, task, user, comment="needs a second look"):
    return api_client(actor).post(
        f"/api/v1/tasks/{task.pk}/assignees/", {"user": user, "comment": comment}, format="json"
    )


def test_an_assignee_adds_someone_by_email_and_an_all_step_then_needs_them(org, p):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    r = add(p.fiona, task, p.carl.email.upper())
    assert r.status_code == 200, r.content
    assert {a["user"] for a in r.json()["assignees"]} == {str(p.fiona.pk), str(p.frank.pk), str(p.carl.pk)}
    row = AuditLog.objects.get(action="task.assignee_added")
    assert row.actor_id == p.fiona.pk and row.changes["comment"] == "needs a second look"
    assert AuditLog.objects.filter(action="task.assigned", changes__assignee=str(p.carl.pk)).exists()
    assert api_client(p.carl).get("/api/v1/tasks/").json()["count"] == 1  # in the new approver's inbox

    decide(p.fiona, task)
    decide(p.frank, task)
    assert open_task(rid).status == TaskStatus.PENDING  # all: carl too
    assert decide(p.carl, task).status_code == 200
    assert status(rid) == "approved"
    assert add(p.fiona, task, str(p.bob.pk)).status_code == 409  # closed task


def test_quorum_counts_the_added_approver(org, p):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="quorum", quorum_count=2)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    decide(p.fiona, task)
    assert add(p.admin, task, str(p.carl.pk)).status_code == 200  # org admin: tasks.manage
    decide(p.frank, task, "reject", comment="no")
    assert open_task(rid).status == TaskStatus.PENDING  # without carl the quorum were unreachable
    decide(p.carl, task)
    assert status(rid) == "approved"


def test_who_may_add_and_who_may_be_added(org, p, other_org):
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    stranger = make_user(other_org, "stranger@elsewhere.test", roles=["org_admin"])
    designer = make_user(org, "designer@acme-test.test", roles=["workflow_designer"])

    r = add(p.mark, task, stranger.email)  # another organization's user, by e-mail or id
    assert r.status_code == 404 and error_code(r) == "not_found"
    assert add(p.mark, task, str(stranger.pk)).status_code == 404
    assert add(stranger, task, str(p.bob.pk)).status_code == 404  # another organization's caller
    r = add(p.mark, task, str(p.alice.pk))  # the requester: self-approval
    assert r.status_code == 400 and "user" in r.json()["error"]["details"]
    assert add(p.bob, task, str(p.lena.pk)).status_code == 404  # not assigned, cannot see it
    assert Assignment.objects.filter(task=task).count() == 1
    assert not AuditLog.objects.filter(action="task.assignee_added").exists()

    r = add(designer, task, str(p.lena.pk))  # workflows.manage: a workflow admin
    assert r.status_code == 200, r.content
    again = add(designer, task, p.lena.email)  # idempotent per user
    assert again.status_code == 200
    assert Assignment.objects.filter(task=task, assignee=p.lena).count() == 1
