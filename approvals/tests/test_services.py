"""Separation of duties on every path that lets someone decide (self-approval, distinct approvers)."""

import datetime as dt

import pytest

from approvals.lifecycle import services as lifecycle
from approvals.models import ApprovalTask, Assignment, TaskStatus
from approvals.sla_scan import run_scan
from approvals.tests.test_engine import decide, delegate, open_task, submit
from approvals.tests.test_sla_support import make_sla_task
from auditlogs.models import AuditLog
from core.exceptions import ValidationFailed
from core.testing import api_client, error_code
from requests.models import Request
from requests.tests.factories import People, make_flow, role_step, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def test_requester_cannot_approve_own_request_through_a_later_delegation(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    r = delegate(p.mark, p.alice)  # after the task exists: the requester becomes the approver's delegate
    assert r.status_code == 201
    assert r.json()["not_used_for"] == [str(task.pk)]  # the delegation API says it is not used for it
    listed = api_client(p.mark).get("/api/v1/delegations/").json()["results"][0]
    assert listed["not_used_for"] == [str(task.pk)]
    assert api_client(p.alice).get("/api/v1/tasks/").json()["count"] == 0  # not in her inbox

    r = decide(p.alice, task)
    assert r.status_code == 403 and error_code(r) == "self_approval"
    r = api_client(p.alice).post("/api/v1/tasks/bulk-approve/", {"tasks": [str(task.pk)]}, format="json")
    assert r.json()["results"][0]["error"]["code"] == "self_approval"
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING and Request.objects.get(pk=rid).status == "pending"
    assert not Assignment.objects.filter(task=task, assignee=p.alice).exists()
    assert not AuditLog.objects.filter(action="task.approved").exists()
    assert decide(p.mark, task).status_code == 200  # the approver keeps the task


def test_delegation_to_the_requester_is_used_when_the_step_allows_self_approval(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark, allow_self_approval=True)])
    rid = submit(p.alice, v)["id"]
    r = delegate(p.mark, p.alice)
    assert r.json()["not_used_for"] == []
    assert decide(p.alice, open_task(rid)).status_code == 200


def test_delegate_who_decided_another_step_is_refused_under_distinct_approvers(org, p):
    v = make_flow(org, [user_step(1, "First", p.bob), user_step(2, "Second", p.mark)], distinct=True)
    rid = submit(p.alice, v)["id"]
    assert decide(p.bob, open_task(rid)).status_code == 200
    delegate(p.mark, p.bob)
    r = decide(p.bob, open_task(rid))
    assert r.status_code == 403 and error_code(r) == "distinct_approvers"
    assert open_task(rid).status == TaskStatus.PENDING


def test_reassign_and_add_assignee_refuse_who_may_not_decide(org, p):
    v = make_flow(org, [user_step(1, "First", p.bob), user_step(2, "Second", p.mark)], distinct=True)
    rid = submit(p.alice, v)["id"]
    decide(p.bob, open_task(rid))
    task = open_task(rid)
    for who in (p.bob, p.alice):  # decided stage 1; the requester
        r = api_client(p.admin).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(who.pk)}, format="json")
        assert r.status_code == 400 and "user" in r.json()["error"]["details"]
        with pytest.raises(ValidationFailed):
            lifecycle.task_add_assignee(actor=p.admin, task_id=task.pk, user=who)
    assert set(task.assignments.filter(is_active=True).values_list("assignee_id", flat=True)) == {p.mark.pk}
    moved = AuditLog.objects.filter(action__in=["task.reassigned", "task.assigned"], changes__assignee=str(p.alice.pk))
    assert not moved.exists()


def test_sla_add_approver_never_adds_the_requester(org, people):
    mon = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)
    task = make_sla_task(
        org,
        assignees=[people["approver"]],
        requester=people["requester"],
        activated_at=mon,
        on_breach="add_approver",
        escalate_to="user",
        escalate_to_ref=people["requester"].email,
    )
    report = run_scan(now=mon + dt.timedelta(hours=9))
    assert not report.errors
    assert "not applied" in report.escalations[0].note
    assert set(ApprovalTask.objects.get(pk=task.pk).assignments.values_list("assignee_id", flat=True)) == {
        people["approver"].pk
    }


def test_role_route_to_requester_is_still_excluded(org, p):
    from accounts.models import Role, RoleMembership

    RoleMembership.objects.create(
        organization=org, role=Role.objects.get(organization=org, slug="finance_approver"), user=p.alice
    )
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="any")])
    rid = submit(p.alice, v)["id"]
    assert p.alice.pk not in set(open_task(rid).assignments.values_list("assignee_id", flat=True))
