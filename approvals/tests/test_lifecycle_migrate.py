"""Version migration (issue 16.4): POST workflows/{id}/migrate/ and manage.py workflow_migrate."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from approvals.models import ApprovalTask, Assignment, TaskStatus
from approvals.tests.test_engine import decide, open_task, status, submit
from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_user
from requests.models import Request
from requests.tests.factories import People, make_flow, next_version, role_step, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def migrate(actor, v1, **body):
    body = {"from_version": 1, "to_version": 2, **body}
    return api_client(actor).post(f"/api/v1/workflows/{v1.definition_id}/migrate/", body, format="json")


def test_pending_steps_keep_their_decisions_a_removed_one_is_cancelled_and_new_ones_open(org, p):
    v1 = make_flow(
        org,
        [
            user_step(1, "Manager", p.mark),
            role_step(2, "Finance", "finance_approver", mode="all"),
            user_step(2, "Legal", p.lena),
        ],
    )
    rid = submit(p.alice, v1)["id"]
    decide(p.mark, open_task(rid))
    decide(p.fiona, open_task(rid, "Finance"))  # one of two: the decision must survive
    v2 = next_version(
        v1,
        [
            user_step(1, "Manager", p.mark),
            role_step(2, "Finance", "finance_approver", mode="all"),  # kept
            user_step(2, "Security", p.carl),  # Legal removed, Security added
        ],
    )

    dry = migrate(p.admin, v1)
    assert dry.status_code == 200, dry.content
    (plan,) = dry.json()["results"]
    assert plan["action"] == "migrate" and plan["keep"] == ["finance"]
    assert plan["cancel"] == ["legal"] and plan["activate"] == ["security"]
    assert Request.objects.get(pk=rid).workflow_version_id == v1.pk  # dry run: nothing changed
    assert not AuditLog.objects.filter(action="request.migrated").exists()

    r = migrate(p.admin, v1, dry_run=False)
    assert r.status_code == 200 and r.json()["results"][0]["action"] == "migrate"
    req = Request.objects.get(pk=rid)
    assert req.workflow_version_id == v2.pk and req.status == "pending"
    finance = open_task(rid, "Finance")
    assert finance.step.version_id == v2.pk
    assert Assignment.objects.get(task=finance, assignee=p.fiona).decision == "approved"
    legal = ApprovalTask.objects.get(request_id=rid, step__name="Legal")
    assert legal.status == TaskStatus.CANCELLED and legal.outcome_reason == "migrated"
    assert open_task(rid, "Security").assignments.get().assignee_id == p.carl.pk
    row = AuditLog.objects.get(action="request.migrated")
    assert row.changes["from_version"] == 1 and row.changes["to_version"] == 2
    timeline = api_client(p.alice).get(f"/api/v1/requests/{rid}/timeline/").json()
    assert "request.migrated" in [e["action"] for e in timeline]

    decide(p.frank, finance)
    decide(p.carl, open_task(rid, "Security"))
    assert status(rid) == "approved"


def test_a_renamed_step_keeps_its_pending_task(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark), role_step(2, "Finance", "finance_approver", mode="all")])
    rid = submit(p.alice, v1)["id"]
    decide(p.mark, open_task(rid))
    task = open_task(rid, "Finance")
    decide(p.fiona, task)
    # the same step (its key) under a new name: not a removed step plus a new one
    v2 = next_version(
        v1,
        [
            user_step(1, "Manager", p.mark),
            role_step(2, "Finance review", "finance_approver", mode="all", key="finance"),
        ],
    )

    r = migrate(p.admin, v1, dry_run=False)
    (result,) = r.json()["results"]
    assert (result["action"], result["keep"], result["cancel"], result["activate"]) == ("migrate", ["finance"], [], [])
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING and task.step.version_id == v2.pk and task.step.name == "Finance review"
    assert Assignment.objects.get(task=task, assignee=p.fiona).decision == "approved"
    decide(p.frank, task)
    assert status(rid) == "approved"


def test_a_request_whose_completed_stages_change_is_left_alone_unless_restart(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark), user_step(2, "Legal", p.lena)])
    rid = submit(p.alice, v1)["id"]
    decide(p.mark, open_task(rid))  # stage 1 completed
    next_version(v1, [user_step(1, "Head of department", p.bob), user_step(2, "Legal", p.lena)])

    r = migrate(p.admin, v1, dry_run=False)
    (result,) = r.json()["results"]
    assert result["action"] == "left_alone" and result["reason"] == "completed_stages_change"
    assert sorted(result["changes"]) == ["Head of department: added to completed stage 1", "Manager: removed"]
    req = Request.objects.get(pk=rid)
    assert req.workflow_version_id == v1.pk and open_task(rid).step.name == "Legal"
    assert not AuditLog.objects.filter(action="request.migrated").exists()

    r = migrate(p.admin, v1, dry_run=False, restart=True)
    assert r.json()["results"][0]["action"] == "restart"
    req.refresh_from_db()
    assert req.round == 2 and req.current_stage == 1
    assert open_task(rid).step.name == "Head of department"
    assert ApprovalTask.objects.get(request_id=rid, round=1, step__name="Legal").status == TaskStatus.CANCELLED


def test_refusals_change_nothing(org, p, other_admin):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark)])
    rid = submit(p.alice, v1)["id"]
    next_version(v1, [user_step(1, "Manager", p.mark)])
    designer = make_user(org, "designer@acme-test.test", roles=["workflow_designer"])
    assert migrate(p.alice, v1).status_code == 403  # no workflows.manage
    assert migrate(other_admin, v1, dry_run=False).status_code == 404  # another organization's workflow
    r = migrate(designer, v1, to_version=1)
    assert r.status_code == 400 and "to_version" in r.json()["error"]["details"]
    r = migrate(designer, v1, to_version=7)
    assert r.status_code == 400 and error_code(r) == "validation_error"
    assert Request.objects.get(pk=rid).workflow_version_id == v1.pk
    assert migrate(designer, v1, dry_run=False).json()["results"][0]["action"] == "migrate"


def test_the_command_dry_run_and_run(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark)], key="cmd-flow")
    rid = submit(p.alice, v1)["id"]
    v2 = next_version(v1, [user_step(1, "Manager", p.mark)])
    out = StringIO()
    call_command("workflow_migrate", "cmd-flow", "--from", "1", "--to", "2", "--dry-run", "--org", org.slug, stdout=out)
    lines = out.getvalue().splitlines()
    assert json.loads(lines[0])["action"] == "migrate" and lines[-1] == "would move 1 of 1 requests"
    assert Request.objects.get(pk=rid).workflow_version_id == v1.pk
    call_command("workflow_migrate", "cmd-flow", "--from", "1", "--to", "2", "--org", org.slug, stdout=StringIO())
    assert Request.objects.get(pk=rid).workflow_version_id == v2.pk
    assert open_task(rid).step.version_id == v2.pk


def test_the_admin_page_dry_runs_then_moves(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark), user_step(1, "Legal", p.lena)])
    rid = submit(p.alice, v1)["id"]
    v2 = next_version(v1, [user_step(1, "Manager", p.mark)])
    dana = make_user(org, "dana@acme-test.test", roles=["workflow_designer"], is_staff=True)
    client = Client()
    client.force_login(dana)
    url = f"/admin/workflows/workflowversion/{v2.pk}/migrate/"
    page = client.get(url, {"from_version": 1})
    html = page.content.decode()
    assert page.status_code == 200 and 'data-action="migrate"' in html and "legal" in html
    assert Request.objects.get(pk=rid).workflow_version_id == v1.pk  # the dry run changed nothing
    done = client.post(url, {"from_version": 1})
    assert done.status_code == 200 and "Done (1 request)" in done.content.decode()
    assert Request.objects.get(pk=rid).workflow_version_id == v2.pk
    assert ApprovalTask.objects.get(request_id=rid, step__name="Legal").status == TaskStatus.CANCELLED
    assert client.get(f"/admin/workflows/workflowversion/{v1.pk}/migrate/").status_code == 200  # v1: not published
    outsider = make_user(org, "staff@acme-test.test", roles=["requester"], is_staff=True)
    client.force_login(outsider)
    assert client.post(url, {"from_version": 1}).status_code in (403, 404)


def test_a_kept_task_is_decided_under_its_new_steps_mode(org, p):
    v1 = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all"), user_step(2, "Legal", p.lena)])
    rid = submit(p.alice, v1)["id"]
    task = open_task(rid)
    decide(p.fiona, task)  # one of two: not enough for "all"
    next_version(v1, [role_step(1, "Finance", "finance_approver", mode="any"), user_step(2, "Legal", p.lena)])

    (dry,) = migrate(p.admin, v1).json()["results"]
    assert dry["keep"] == ["finance"] and dry["settle"] == {"finance": "approve"}
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING  # the dry run decided nothing

    (result,) = migrate(p.admin, v1, dry_run=False).json()["results"]
    assert result["settle"] == {"finance": "approve"}
    task.refresh_from_db()
    assert task.status == TaskStatus.APPROVED and task.outcome_reason == "migrated_approved"
    assert open_task(rid).step.name == "Legal" and Request.objects.get(pk=rid).current_stage == 2
    row = AuditLog.objects.get(action="task.approved", target_id=str(task.pk), changes__system=True)
    assert row.changes["outcome"] == "migrated_approved"


def test_a_request_whose_data_does_not_fit_the_new_form_is_left_alone(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark)])
    rid = submit(p.alice, v1)["id"]  # no cost_center
    schema = {**v1.form_schema, "properties": {**v1.form_schema["properties"], "cost_center": {"type": "string"}}}
    next_version(v1, [user_step(1, "Manager", p.mark)], form_schema={**schema, "required": ["amount", "cost_center"]})

    (result,) = migrate(p.admin, v1, dry_run=False, restart=True).json()["results"]
    assert (result["action"], result["reason"]) == ("left_alone", "data_invalid")
    assert list(result["errors"]) == ["data.cost_center"]
    assert Request.objects.get(pk=rid).workflow_version_id == v1.pk
    assert open_task(rid).step.version_id == v1.pk
    assert not AuditLog.objects.filter(action="request.migrated").exists()


def test_a_call_moves_at_most_the_limit_and_says_how_many_remain(org, p, monkeypatch):
    from approvals.lifecycle import services

    monkeypatch.setattr(services, "MIGRATE_MAX_REQUESTS", 2)
    v1 = make_flow(org, [user_step(1, "Manager", p.mark)], key="many-flow")
    rids = [submit(p.alice, v1, title=f"r{i}")["id"] for i in range(3)]
    v2 = next_version(v1, [user_step(1, "Manager", p.mark)])

    body = migrate(p.admin, v1, dry_run=False).json()
    assert len(body["results"]) == 2 and body["remaining"] == 1
    assert [Request.objects.get(pk=r).workflow_version_id for r in rids] == [v2.pk, v2.pk, v1.pk]  # oldest first
    body = migrate(p.admin, v1, dry_run=False).json()
    assert len(body["results"]) == 1 and body["remaining"] == 0

    v3 = next_version(v2, [user_step(1, "Manager", p.mark)])  # the command goes on while calls move requests
    out = StringIO()
    call_command("workflow_migrate", "many-flow", "--from", "2", "--to", "3", "--org", org.slug, stdout=out)
    assert out.getvalue().splitlines()[-1] == "moved 3 of 3 requests"
    assert {Request.objects.get(pk=r).workflow_version_id for r in rids} == {v3.pk}


def test_the_versions_list_action_leads_to_the_dry_run_page(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark), user_step(1, "Legal", p.lena)])
    rid = submit(p.alice, v1)["id"]
    v2 = next_version(v1, [user_step(1, "Manager", p.mark)])
    dana = make_user(org, "dana@acme-test.test", roles=["workflow_designer"], is_staff=True)
    client = Client()
    client.force_login(dana)
    changelist = "/admin/workflows/workflowversion/"
    action = {"action": "migrate_requests_selected"}
    r = client.post(changelist, {**action, "_selected_action": [str(v2.pk)]})
    url = f"/admin/workflows/workflowversion/{v2.pk}/migrate/"
    assert r.status_code == 302 and r["Location"] == f"{url}?from_version=1"  # the version requests run on
    page = client.get(r["Location"])
    assert page.status_code == 200 and 'data-action="migrate"' in page.content.decode()
    assert Request.objects.get(pk=rid).workflow_version_id == v1.pk  # the page is a dry run

    for selection in ([str(v1.pk)], [str(v1.pk), str(v2.pk)]):  # retired, or more than one: a warning
        r = client.post(changelist, {**action, "_selected_action": selection})
        assert r.status_code == 302 and r["Location"] == changelist
    assert Request.objects.get(pk=rid).workflow_version_id == v1.pk


def test_a_stage_left_without_steps_moves_the_request_on(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark), user_step(2, "Legal", p.lena), user_step(3, "CFO", p.carl)])
    rid = submit(p.alice, v1)["id"]
    decide(p.mark, open_task(rid))
    next_version(v1, [user_step(1, "Manager", p.mark), user_step(2, "CFO", p.carl)])  # legal gone: CFO is stage 2

    (result,) = migrate(p.admin, v1, dry_run=False).json()["results"]
    assert (result["action"], result["cancel"], result["activate"]) == ("migrate", ["legal"], ["cfo"])
    task = open_task(rid)
    assert task.step.key == "cfo" and task.stage == 2 and Request.objects.get(pk=rid).current_stage == 2


def test_only_the_named_requests_move(org, p):
    v1 = make_flow(org, [user_step(1, "Manager", p.mark)])
    first, second = submit(p.alice, v1)["id"], submit(p.alice, v1)["id"]
    v2 = next_version(v1, [user_step(1, "Manager", p.mark)])
    body = migrate(p.admin, v1, dry_run=False, requests=[second]).json()
    assert [x["request"] for x in body["results"]] == [second] and body["remaining"] == 0
    assert [Request.objects.get(pk=r).workflow_version_id for r in (first, second)] == [v1.pk, v2.pk]


def test_the_dry_runs_queries_grow_by_a_constant_per_request(org, p, django_assert_num_queries):
    route, new_route = [user_step(1, "Manager", p.mark)], [user_step(1, "Legal", p.lena)]
    flows = [make_flow(org, route) for _ in range(3)]
    for n, v1 in enumerate(flows, start=1):
        for _ in range(n):
            submit(p.alice, v1)
        next_version(v1, new_route)
    for v1 in flows:
        migrate(p.admin, v1)  # warm the caches (compiled routes)
    counts = []
    for v1 in flows[:2]:
        with CaptureQueriesContext(connection) as ctx:
            assert migrate(p.admin, v1).status_code == 200
        counts.append(len(ctx))
    per_request = counts[1] - counts[0]
    assert 0 < per_request <= 8  # lock, plan (tasks, assignments, steps), form
    with django_assert_num_queries(counts[1] + per_request):
        assert len(migrate(p.admin, flows[2]).json()["results"]) == 3
