"""Resubmission: resume at the returning stage vs restart (docs/lifecycle.md), rounds kept."""

import pytest

from approvals.models import ApprovalTask, TaskStatus
from auditlogs.models import AuditLog
from core.testing import api_client
from requests.models import Request
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


@pytest.fixture
def flow(org, p):
    # stage 1: manager; stage 1 conditional legal (amount > 5000); stage 2: finance (returns to requester)
    version = make_flow(
        org,
        [
            user_step(1, "Manager", p.mark),
            user_step(1, "Legal", p.lena, condition="amount > 5000"),
            user_step(2, "Finance", p.fiona, on_reject="return_to_requester"),
            user_step(3, "CFO", p.carl),
        ],
    )
    # These tests pin the `resume` policy (the workflow opts in); the default, restart_if_changed,
    # and the others: approvals/tests/test_lifecycle_resubmit.py.
    version.definition.resubmit_policy = "resume"
    version.definition.save(update_fields=["resubmit_policy"])
    return version


def returned(p, flow, amount=3000):
    rid = (
        api_client(p.alice)
        .post(
            "/api/v1/requests/",
            {"workflow": flow.definition.key, "title": "T", "data": {"amount": amount, "vendor": "v"}, "submit": True},
            format="json",
        )
        .json()["id"]
    )
    for user in (p.mark, p.lena):
        t = ApprovalTask.objects.filter(request_id=rid, status="pending", assignments__assignee=user).first()
        if t:
            api_client(user).post(f"/api/v1/tasks/{t.pk}/approve/")
    t = ApprovalTask.objects.get(request_id=rid, status="pending")
    r = api_client(p.fiona).post(f"/api/v1/tasks/{t.pk}/request-changes/", {"comment": "need a quote"}, format="json")
    assert r.status_code == 200
    assert Request.objects.get(pk=rid).status == "changes_requested"
    return rid


def test_resume_at_returning_stage(p, flow):
    rid = returned(p, flow)
    r = api_client(p.alice).post(
        f"/api/v1/requests/{rid}/resubmit/", {"data": {"amount": 3500, "vendor": "v2"}}, format="json"
    )
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["status"] == "pending" and body["round"] == 2 and body["current_stage"] == 2
    round2 = ApprovalTask.objects.filter(request_id=rid, round=2)
    assert [t.step.name for t in round2] == ["Finance"]
    # round 1 kept, manager approval stands
    assert ApprovalTask.objects.get(request_id=rid, round=1, step__name="Manager").status == TaskStatus.APPROVED
    assert ApprovalTask.objects.filter(request_id=rid, round=1).count() == 3
    row = AuditLog.objects.get(action="request.resubmitted")
    assert row.changes["restarted"] is False and row.changes["round"] == [1, 2]
    t = round2.get()
    api_client(p.fiona).post(f"/api/v1/tasks/{t.pk}/approve/")
    t = ApprovalTask.objects.get(request_id=rid, status="pending")
    assert t.step.name == "CFO" and t.round == 2
    api_client(p.carl).post(f"/api/v1/tasks/{t.pk}/approve/")
    assert Request.objects.get(pk=rid).status == "approved"
    assert len(api_client(p.alice).get(f"/api/v1/requests/{rid}/").json()["tasks"]) == 5


def test_restart_when_earlier_conditions_change(p, flow):
    rid = returned(p, flow, amount=3000)  # legal skipped in round 1
    r = api_client(p.alice).post(
        f"/api/v1/requests/{rid}/resubmit/", {"data": {"amount": 9000, "vendor": "v"}}, format="json"
    )
    assert r.status_code == 200
    assert r.json()["current_stage"] == 1 and r.json()["round"] == 2
    names = sorted(ApprovalTask.objects.filter(request_id=rid, round=2).values_list("step__name", flat=True))
    assert names == ["Legal", "Manager"]
    assert AuditLog.objects.get(action="request.resubmitted").changes["restarted"] is True


def test_patch_in_changes_requested_then_resubmit(p, flow):
    rid = returned(p, flow, amount=3000)
    c = api_client(p.alice)
    assert c.patch(f"/api/v1/requests/{rid}/", {"title": "Fixed"}, format="json").status_code == 200
    r = c.post(f"/api/v1/requests/{rid}/resubmit/", {}, format="json")
    assert r.status_code == 200 and r.json()["title"] == "Fixed" and r.json()["current_stage"] == 2


def test_resubmit_validates_and_only_requester(p, flow):
    rid = returned(p, flow)
    r = api_client(p.alice).post(f"/api/v1/requests/{rid}/resubmit/", {"data": {"amount": -1}}, format="json")
    assert r.status_code == 400
    assert Request.objects.get(pk=rid).status == "changes_requested"
    assert Request.objects.get(pk=rid).round == 1
    r = api_client(p.mark).post(f"/api/v1/requests/{rid}/resubmit/", {}, format="json")
    assert r.status_code == 403
    assert Request.objects.get(pk=rid).round == 1


def test_cancel_and_withdraw_from_changes_requested(p, flow):
    rid = returned(p, flow)
    assert api_client(p.admin).post(f"/api/v1/requests/{rid}/cancel/").json()["status"] == "cancelled"
    rid2 = returned(p, flow)
    assert api_client(p.alice).post(f"/api/v1/requests/{rid2}/withdraw/").json()["status"] == "withdrawn"
