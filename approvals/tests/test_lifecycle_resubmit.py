"""Resubmission under each workflow ``resubmit_policy``, with changed and unchanged data.

The issue's case: the manager approved 3,000, finance asked for changes, the requester resubmitted
9,000,000. Under the default policy the manager is asked again; the timeline says why.
"""

import pytest

from approvals.models import ApprovalTask, TaskStatus
from approvals.tests.test_engine import decide, open_task, submit
from auditlogs.models import AuditLog
from core.testing import api_client
from requests.tests.factories import People, make_flow, user_step
from workflows.io import export_document, import_document
from workflows.models import ResubmitPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def returned_request(p, org, policy):
    """Manager (stage 1) approves 3,000; finance (stage 2) asks for changes."""
    version = make_flow(
        org, [user_step(1, "Manager", p.mark), user_step(2, "Finance", p.fiona), user_step(3, "CFO", p.carl)]
    )
    if policy is not None:
        version.definition.resubmit_policy = policy
        version.definition.save(update_fields=["resubmit_policy"])
    rid = submit(p.alice, version, data={"amount": 3000, "vendor": "Contoso"})["id"]
    assert decide(p.mark, open_task(rid)).status_code == 200
    assert decide(p.fiona, open_task(rid), "request-changes", comment="a quote please").status_code == 200
    return rid


def resubmit(p, rid, **body):
    r = api_client(p.alice).post(f"/api/v1/requests/{rid}/resubmit/", body, format="json")
    assert r.status_code == 200, r.json()
    return r.json()


def round_two(rid):
    return sorted(ApprovalTask.objects.filter(request_id=rid, round=2).values_list("step__name", flat=True))


def resubmitted_row(rid):
    return AuditLog.objects.get(action="request.resubmitted", target_id=str(rid)).changes


CHANGED = {"data": {"amount": 9_000_000, "vendor": "Contoso"}}
UNCHANGED_BUT_REORDERED = {"data": {"vendor": "Contoso", "amount": 3000}}  # same data, other key order

CASES = [
    # policy, body, stage the new round starts at, restarted, why
    (None, CHANGED, 1, True, "the data changed since the earlier stages decided"),
    (None, {}, 2, False, "the data is unchanged since the earlier stages decided"),
    (None, UNCHANGED_BUT_REORDERED, 2, False, "the data is unchanged since the earlier stages decided"),
    (ResubmitPolicy.RESTART, CHANGED, 1, True, "the workflow asks every stage again on resubmission"),
    (ResubmitPolicy.RESTART, {}, 1, True, "the workflow asks every stage again on resubmission"),
    (ResubmitPolicy.RESUME, CHANGED, 2, False, "the workflow resumes at the stage that asked for changes"),
    (ResubmitPolicy.RESUME, {}, 2, False, "the workflow resumes at the stage that asked for changes"),
]


@pytest.mark.parametrize(("policy", "body", "stage", "restarted", "why"), CASES)
def test_resubmit_under_each_policy(org, p, policy, body, stage, restarted, why):
    rid = returned_request(p, org, policy)
    answer = resubmit(p, rid, **body)
    assert answer["current_stage"] == stage and answer["round"] == 2
    assert round_two(rid) == (["Manager"] if restarted else ["Finance"])
    row = resubmitted_row(rid)
    assert row["resubmit_policy"] == (policy or ResubmitPolicy.RESTART_IF_CHANGED)
    assert row["restarted"] is restarted and row["reason"] == why
    assert row["resume_stage"] == (None if restarted else 2)
    # the timeline (what the requester sees) carries the same: which policy, and why
    timeline = api_client(p.alice).get(f"/api/v1/requests/{rid}/timeline/").json()
    items = timeline["results"] if isinstance(timeline, dict) else timeline
    shown = next(i for i in items if i["action"] == "request.resubmitted")
    assert shown["changes"]["reason"] == why and shown["changes"]["resubmit_policy"] == row["resubmit_policy"]


def test_default_asks_the_manager_again_for_a_changed_amount(org, p):
    rid = returned_request(p, org, None)
    resubmit(p, rid, **CHANGED)
    task = open_task(rid)
    assert task.step.name == "Manager" and task.round == 2  # the 3,000 approval does not count for 9,000,000
    assert decide(p.mark, task).status_code == 200
    assert open_task(rid).step.name == "Finance"


def test_an_edit_while_returned_counts_as_a_change(org, p):
    rid = returned_request(p, org, None)
    c = api_client(p.alice)
    assert c.patch(f"/api/v1/requests/{rid}/", CHANGED, format="json").status_code == 200
    answer = resubmit(p, rid)  # nothing new in the resubmission itself
    assert answer["current_stage"] == 1 and round_two(rid) == ["Manager"]


def test_a_title_change_is_not_a_data_change(org, p):
    rid = returned_request(p, org, None)
    answer = resubmit(p, rid, title="Laptops, with a quote")
    assert answer["current_stage"] == 2 and round_two(rid) == ["Finance"]
    assert ApprovalTask.objects.get(request_id=rid, round=1, step__name="Manager").status == TaskStatus.APPROVED


def test_the_policy_through_the_api_and_its_validation(org, p):
    admin = api_client(p.admin)
    r = admin.post("/api/v1/workflows/", {"key": "leave", "name": "Leave"}, format="json")
    assert r.status_code == 201 and r.json()["resubmit_policy"] == "restart_if_changed"
    wid = r.json()["id"]
    r = admin.patch(f"/api/v1/workflows/{wid}/", {"resubmit_policy": "resume"}, format="json")
    assert r.status_code == 200 and r.json()["resubmit_policy"] == "resume"
    assert AuditLog.objects.filter(action="workflow.updated", changes__resubmit_policy=["restart_if_changed", "resume"])
    r = admin.patch(f"/api/v1/workflows/{wid}/", {"resubmit_policy": "sometimes"}, format="json")
    assert r.status_code == 400 and "resubmit_policy" in r.json()["error"]["details"]
    assert api_client(p.admin).get(f"/api/v1/workflows/{wid}/").json()["resubmit_policy"] == "resume"


def test_export_and_import_carry_the_policy(org, other_org, p):
    version = make_flow(org, [user_step(1, "Manager", p.mark)], key="kit")
    version.definition.resubmit_policy = ResubmitPolicy.RESTART
    version.definition.save(update_fields=["resubmit_policy"])
    document = export_document(organization=org, key="kit")
    assert document["resubmit_policy"] == "restart"
    other_admin = People(other_org).admin
    document["steps"] = [{**s, "approver_ref": other_admin.email} for s in document["steps"]]
    definition, _ = import_document(organization=other_org, actor=other_admin, document=document)
    assert definition.resubmit_policy == "restart"
    without = {k: v for k, v in document.items() if k != "resubmit_policy"} | {"key": "kit2"}
    definition, _ = import_document(organization=other_org, actor=other_admin, document=without)
    assert definition.resubmit_policy == "restart_if_changed"
