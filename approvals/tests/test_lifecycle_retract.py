"""Retract a decision (issue 16.2): POST /tasks/{id}/retract/ while the step has not settled."""

import pytest

from approvals.models import Assignment, TaskStatus
from approvals.tests.test_engine import decide, delegate, open_task, status, submit
from auditlogs.models import AuditLog
from core.testing import api_client, error_code
from notifications.models import Notification
from requests.tests.factories import People, make_flow, role_step, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def retract(user, task, comment="clicked the wrong button"):
    return api_client(user).post(f"/api/v1/tasks/{task.pk}/retract/", {"comment": comment}, format="json")


def test_retract_in_an_all_step_makes_the_assignment_undecided_again(org, p):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    assert decide(p.fiona, task).status_code == 200

    r = retract(p.fiona, task)
    assert r.status_code == 200, r.content
    mine = next(a for a in r.json()["assignees"] if a["user"] == str(p.fiona.pk))
    assert mine["decision"] == "" and mine["decided_at"] is None
    assert r.json()["status"] == "pending"
    row = AuditLog.objects.get(action="task.retracted")
    assert row.actor_id == p.fiona.pk and row.changes["decision"] == ["approved", ""]
    assert row.changes["comment"] == "clicked the wrong button"
    note = Notification.objects.get(kind="decision_retracted")
    assert note.recipient_id == p.alice.pk and p.fiona.email in note.title
    timeline = api_client(p.alice).get(f"/api/v1/requests/{rid}/timeline/").json()
    actions = [e["action"] for e in timeline]
    assert "task.retracted" in actions

    # The all step now needs fiona again: frank alone does not settle it.
    assert decide(p.frank, task).status_code == 200
    assert open_task(rid).status == TaskStatus.PENDING
    assert decide(p.fiona, task, "reject", comment="no").status_code == 200
    assert status(rid) == "rejected"


def test_retract_after_the_step_settled_is_decision_final_and_changes_nothing(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark), user_step(2, "Legal", p.lena)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    assert decide(p.mark, task).status_code == 200  # any: settled, stage 2 active
    before = AuditLog.objects.count()

    r = retract(p.mark, task)
    assert r.status_code == 409 and error_code(r) == "decision_final"
    task.refresh_from_db()
    assert task.status == TaskStatus.APPROVED
    assert Assignment.objects.get(task=task, assignee=p.mark).decision == "approved"
    assert open_task(rid).step.name == "Legal"
    assert AuditLog.objects.count() == before


def test_retract_refusals(org, p, other_admin):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    decide(p.fiona, task)
    r = retract(p.fiona, task, comment="  ")
    assert r.status_code == 400 and "comment" in r.json()["error"]["details"]
    r = retract(p.frank, task)  # an assignee who has not decided
    assert r.status_code == 409 and error_code(r) == "not_decided"
    assert retract(p.bob, task).status_code == 404  # cannot even see it
    assert retract(other_admin, task).status_code == 404  # another organization
    r = retract(p.admin, task)  # sees it, but did not decide it
    assert r.status_code == 403 and error_code(r) == "not_assignee"
    assert Assignment.objects.get(task=task, assignee=p.fiona).decision == "approved"
    assert not AuditLog.objects.filter(action="task.retracted").exists()


def test_a_delegate_retracting_gives_the_place_back_to_the_delegator(org, p):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    delegate(p.fiona, p.bob)
    assert decide(p.bob, task).status_code == 200
    r = retract(p.bob, task)
    assert r.status_code == 200, r.content
    active = {a["user"]: a for a in r.json()["assignees"] if a["is_active"]}
    assert set(active) == {str(p.fiona.pk), str(p.frank.pk)}
    assert active[str(p.fiona.pk)]["decision"] == ""
    row = AuditLog.objects.get(action="task.retracted")
    assert row.changes["on_behalf_of"] == str(p.fiona.pk)
    assert decide(p.fiona, task).status_code == 200  # the delegator decides again herself
