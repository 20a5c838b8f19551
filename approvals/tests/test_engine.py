"""Routing and decision semantics through the API (and the service interfaces others call)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from approvals.lifecycle import services as lifecycle
from approvals.lifecycle.actions import do_add_assignee, do_settle
from approvals.lifecycle.events import Outbox
from approvals.lifecycle.locks import lock_task
from approvals.models import ApprovalTask, Assignment, Delegation, TaskStatus
from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_user
from notifications.models import Notification
from requests.models import Request
from requests.tests.factories import People, make_flow, purchase_flow, role_step, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def submit(user, version, data=None, title="Req"):
    r = api_client(user).post(
        "/api/v1/requests/",
        {
            "workflow": version.definition.key,
            "title": title,
            "data": data or {"amount": 100, "vendor": "v"},
            "submit": True,
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    return r.json()


def open_task(rid, name=None):
    qs = ApprovalTask.objects.filter(request_id=rid, status=TaskStatus.PENDING)
    if name:
        qs = qs.filter(step__name=name)
    return qs.get()


def decide(user, task, what="approve", comment="", **extra):
    return api_client(user).post(f"/api/v1/tasks/{task.pk}/{what}/", {"comment": comment}, format="json", **extra)


def status(rid):
    return Request.objects.get(pk=rid).status


def count(action):
    return AuditLog.objects.filter(action=action).count()


# --- modes -------------------------------------------------------------------------------------


def test_any_first_decision_settles(org, p):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="any")])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    r = decide(p.fiona, task)
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "approved"
    assert status(rid) == "approved"
    r = decide(p.frank, task)
    assert r.status_code == 409 and error_code(r) == "task_closed"
    assert count("request.approved") == 1
    assert Notification.objects.filter(kind="request_approved", recipient=p.alice).count() == 1


def test_all_needs_everyone_and_one_reject_rejects(org, p):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    r = decide(p.fiona, task)
    assert r.json()["status"] == "pending" and status(rid) == "pending"
    r = decide(p.fiona, task)
    assert r.status_code == 409 and error_code(r) == "already_decided"
    assert decide(p.frank, task).json()["status"] == "approved"
    assert status(rid) == "approved"

    rid2 = submit(p.alice, v)["id"]
    t2 = open_task(rid2)
    r = decide(p.fiona, t2, "reject", "too expensive")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert status(rid2) == "rejected"
    assert Notification.objects.filter(kind="request_rejected", recipient=p.alice).count() == 1
    assert count("task.rejected") == 1 and count("request.rejected") == 1


def test_quorum_reached_and_unreachable(org, p):
    extra = [make_user(org, roles=["finance_approver"]) for _ in range(2)]  # 4 finance approvers
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="quorum", quorum_count=2)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    assert decide(p.fiona, task, "reject", "no").json()["status"] == "pending"
    assert decide(p.frank, task).json()["status"] == "pending"
    assert decide(extra[0], task).json()["status"] == "approved"
    assert ApprovalTask.objects.get(pk=task.pk).outcome_reason == "quorum_reached"
    assert status(rid) == "approved"

    rid2 = submit(p.alice, v)["id"]
    t2 = open_task(rid2)
    decide(p.fiona, t2, "reject", "no")
    decide(p.frank, t2, "reject", "no")
    assert status(rid2) == "pending"  # 2 undecided could still make 2
    r = decide(extra[0], t2, "reject", "no")
    assert r.json()["status"] == "rejected"
    assert ApprovalTask.objects.get(pk=t2.pk).outcome_reason == "quorum_unreachable"
    assert status(rid2) == "rejected"
    # the last undecided assignee cannot act on a closed task
    assert decide(extra[1], t2).status_code == 409


def test_comment_required_for_reject_and_changes(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    for what in ("reject", "request-changes"):
        r = decide(p.mark, task, what, "")
        assert r.status_code == 400 and "comment" in r.json()["error"]["details"]
    assert ApprovalTask.objects.get(pk=task.pk).status == "pending"
    assert not Assignment.objects.exclude(decision="").exists()


def test_non_assignee_403_other_org_404_changes_nothing(org, p, other_admin):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    r = decide(p.alice, task)  # requester, not an assignee
    assert r.status_code == 403 and error_code(r) == "not_assignee"
    assert decide(p.admin, task).status_code == 403
    assert decide(other_admin, task).status_code == 404
    assert decide(p.bob, task).status_code == 404  # cannot even see it
    assert ApprovalTask.objects.get(pk=task.pk).status == "pending" and status(rid) == "pending"
    assert count("task.approved") == 0


def test_stage_advances_and_on_reject_return(org, p):
    v = make_flow(
        org,
        [
            user_step(1, "M", p.mark),
            user_step(2, "F", p.fiona, on_reject="return_to_requester"),
            user_step(3, "C", p.carl),
        ],
    )
    rid = submit(p.alice, v)["id"]
    decide(p.mark, open_task(rid))
    assert Request.objects.get(pk=rid).current_stage == 2
    r = decide(p.fiona, open_task(rid), "reject", "wrong vendor")
    assert r.status_code == 200
    req = Request.objects.get(pk=rid)
    assert req.status == "changes_requested" and req.returned_from_stage == 2
    assert Notification.objects.filter(kind="changes_requested", recipient=p.alice).count() == 1
    assert count("request.changes_requested") == 1


def test_request_changes_returns(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark), user_step(1, "F", p.fiona)])
    rid = submit(p.alice, v)["id"]
    r = decide(p.mark, open_task(rid, "M"), "request-changes", "add a quote")
    assert r.status_code == 200 and r.json()["outcome_reason"] == "changes_requested"
    assert status(rid) == "changes_requested"
    # the other open task of the stage was cancelled
    assert ApprovalTask.objects.get(request_id=rid, step__name="F").status == "cancelled"
    assert count("task.changes_requested") == 1 and count("task.cancelled") == 1


# --- routing ----------------------------------------------------------------------------------


def test_skip_by_condition_and_all_skipped_stage(org, p):
    v = purchase_flow(org)
    body = submit(p.alice, v, {"amount": 3000, "vendor": "v"})
    rid = body["id"]
    decide(p.mark, open_task(rid))
    req = Request.objects.get(pk=rid)
    assert req.current_stage == 2
    legal = ApprovalTask.objects.get(request_id=rid, step__name="Legal review")
    assert legal.status == "skipped" and legal.outcome_reason == "condition_false"
    decide(p.fiona, open_task(rid))
    decide(p.frank, open_task(rid))
    req.refresh_from_db()
    assert req.status == "approved"
    assert ApprovalTask.objects.get(request_id=rid, step__name="CFO approval").status == "skipped"
    assert count("task.skipped") == 2


def test_all_stages_skipped_approves_on_submit(org, p):
    v = make_flow(org, [user_step(1, "Big", p.mark, condition="amount > 1000000")])
    body = submit(p.alice, v)
    assert body["status"] == "approved"
    assert body["tasks"][0]["status"] == "skipped"


def test_self_approval_excluded_and_allowed(org, p):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")])
    rid = submit(p.fiona, v)["id"]
    assignees = set(open_task(rid).assignments.values_list("assignee_id", flat=True))
    assert assignees == {p.frank.pk}
    v2 = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all", allow_self_approval=True)])
    rid2 = submit(p.fiona, v2)["id"]
    assert set(open_task(rid2).assignments.values_list("assignee_id", flat=True)) == {p.frank.pk, p.fiona.pk}


def test_fallback_to_admins_audited(org, p):
    v = make_flow(org, [user_step(1, "Self", p.alice)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    a = task.assignments.get()
    assert a.assignee == p.admin and a.reason == "fallback_admins"
    row = AuditLog.objects.get(action="task.fallback_admins")
    assert row.changes["reason"] == "requester_excluded"
    # nobody resolvable at all (no manager) -> admins too
    v2 = make_flow(org, [{"stage": 1, "name": "Mgr", "approver_type": "requester_manager"}])
    rid2 = submit(p.bob, v2)["id"]
    assert open_task(rid2).assignments.get().assignee == p.admin


def test_approver_types(org, p):
    v = make_flow(
        org,
        [
            {"stage": 1, "name": "Head", "approver_type": "department_head"},
            {"stage": 1, "name": "Named", "approver_type": "form_field", "approver_ref": "approver"},
            {"stage": 1, "name": "ById", "approver_type": "user", "approver_ref": str(p.carl.pk)},
        ],
        form_schema={"type": "object"},
    )
    rid = submit(p.alice, v, {"approver": p.lena.email})["id"]
    got = {t.step.name: t.assignments.get().assignee for t in ApprovalTask.objects.filter(request_id=rid)}
    assert got == {"Head": p.mark, "Named": p.lena, "ById": p.carl}


def test_condition_on_requester(org, p):
    v = make_flow(
        org,
        [
            user_step(1, "Eng only", p.mark, condition=f"requester.department == '{p.eng.name}'"),
            user_step(2, "All", p.carl),
        ],
    )
    assert ApprovalTask.objects.get(request_id=submit(p.alice, v)["id"], step__name="Eng only").status == "pending"
    assert ApprovalTask.objects.get(request_id=submit(p.bob, v)["id"], step__name="Eng only").status == "skipped"


def test_distinct_approvers(org, p):
    v = make_flow(
        org, [user_step(1, "First", p.mark), role_step(2, "Second", "finance_approver", mode="any")], distinct=True
    )
    # mark is also finance for this test
    from accounts.models import Role, RoleMembership

    RoleMembership.objects.create(
        organization=org, role=Role.objects.get(organization=org, slug="finance_approver"), user=p.mark
    )
    rid = submit(p.alice, v)["id"]
    decide(p.mark, open_task(rid))
    second = open_task(rid)
    assert p.mark.pk not in set(second.assignments.values_list("assignee_id", flat=True))
    # without distinct approvers mark is assigned
    v2 = make_flow(org, [user_step(1, "First", p.mark), role_step(2, "Second", "finance_approver")])
    rid2 = submit(p.alice, v2)["id"]
    decide(p.mark, open_task(rid2))
    assert p.mark.pk in set(open_task(rid2).assignments.values_list("assignee_id", flat=True))


def test_distinct_approvers_parallel_steps(org, p):
    v = make_flow(org, [user_step(1, "A", p.mark), user_step(1, "B", p.mark)], distinct=True)
    rid = submit(p.alice, v)["id"]
    assert decide(p.mark, open_task(rid, "A")).status_code == 200
    r = decide(p.mark, open_task(rid, "B"))
    assert r.status_code == 403 and error_code(r) == "distinct_approvers"


# --- delegation -------------------------------------------------------------------------------


def delegate(frm, to, hours=24, workflow=None, start=-1):
    now = timezone.now()
    body = {
        "to_user": str(to.pk),
        "starts_at": (now + timedelta(hours=start)).isoformat(),
        "ends_at": (now + timedelta(hours=hours)).isoformat(),
    }
    if workflow:
        body["workflow"] = workflow
    return api_client(frm).post("/api/v1/delegations/", body, format="json")


def test_delegation_substitutes_at_routing(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    assert delegate(p.mark, p.bob).status_code == 201
    rid = submit(p.alice, v)["id"]
    a = open_task(rid).assignments.get()
    assert a.assignee == p.bob and a.on_behalf_of == p.mark and a.reason == "delegation"
    inbox = api_client(p.bob).get("/api/v1/tasks/").json()["results"]
    assert inbox[0]["on_behalf_of"] == str(p.mark.pk)
    r = decide(p.bob, open_task(rid))
    assert r.status_code == 200
    detail = api_client(p.alice).get(f"/api/v1/requests/{rid}/").json()
    assert detail["tasks"][0]["assignees"][0] == {
        **detail["tasks"][0]["assignees"][0],
        "user": str(p.bob.pk),
        "on_behalf_of": str(p.mark.pk),
        "decision": "approved",
    }


def test_delegate_sees_and_decides_existing_tasks(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    rid = submit(p.alice, v)["id"]
    assert api_client(p.bob).get(f"/api/v1/requests/{rid}/").status_code == 404
    delegate(p.mark, p.bob)
    assert api_client(p.bob).get(f"/api/v1/requests/{rid}/").status_code == 200
    inbox = api_client(p.bob).get("/api/v1/tasks/").json()
    assert inbox["count"] == 1 and inbox["results"][0]["on_behalf_of"] == str(p.mark.pk)
    r = decide(p.bob, open_task(rid))
    assert r.status_code == 200 and status(rid) == "approved"
    decided = Assignment.objects.get(task__request_id=rid, decision="approved")
    assert decided.assignee == p.bob and decided.on_behalf_of == p.mark
    row = AuditLog.objects.get(action="task.approved")
    assert row.actor_id == p.bob.pk and row.changes["on_behalf_of"] == str(p.mark.pk)
    timeline = api_client(p.alice).get(f"/api/v1/requests/{rid}/timeline/").json()
    assert any(x["action"] == "task.approved" and x["on_behalf_of"] == str(p.mark.pk) for x in timeline)


def test_delegation_scope_and_window(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    other = make_flow(org, [user_step(1, "M", p.mark)])
    delegate(p.mark, p.bob, workflow=other.definition.key)
    rid = submit(p.alice, v)["id"]
    assert open_task(rid).assignments.get().assignee == p.mark  # out of scope
    assert decide(p.bob, open_task(rid)).status_code == 404
    Delegation.objects.all().delete()
    delegate(p.mark, p.bob, start=5, hours=10)  # future window
    assert decide(p.bob, open_task(rid)).status_code == 404


def test_delegation_validation(org, p, other_admin):
    r = delegate(p.mark, p.mark)
    assert r.status_code == 400 and "to_user" in r.json()["error"]["details"]
    now = timezone.now()
    r = api_client(p.mark).post(
        "/api/v1/delegations/",
        {"to_user": str(p.bob.pk), "starts_at": now.isoformat(), "ends_at": (now - timedelta(hours=1)).isoformat()},
        format="json",
    )
    assert r.status_code == 400 and "ends_at" in r.json()["error"]["details"]
    assert delegate(p.mark, other_admin).status_code == 400
    assert delegate(p.mark, p.bob).status_code == 201
    r = delegate(p.bob, p.mark)  # B->A overlapping A->B
    assert r.status_code == 400
    assert delegate(p.bob, p.mark, start=100, hours=200).status_code == 201  # not overlapping
    assert Delegation.objects.count() == 2
    assert count("delegation.created") == 2
    assert Notification.objects.filter(kind="delegation_started", recipient=p.bob).count() == 1


def test_delegation_crud(org, p):
    did = delegate(p.mark, p.bob).json()["id"]
    c = api_client(p.mark)
    assert c.get("/api/v1/delegations/").json()["count"] == 1
    assert api_client(p.bob).get("/api/v1/delegations/").json()["count"] == 0
    assert api_client(p.bob).get("/api/v1/delegations/?direction=received").json()["count"] == 1
    r = c.patch(f"/api/v1/delegations/{did}/", {"reason": "vacation"}, format="json")
    assert r.status_code == 200 and r.json()["reason"] == "vacation"
    assert count("delegation.updated") == 1
    assert api_client(p.bob).patch(f"/api/v1/delegations/{did}/", {"reason": "x"}, format="json").status_code == 404
    assert api_client(p.bob).delete(f"/api/v1/delegations/{did}/").status_code == 404
    assert c.delete(f"/api/v1/delegations/{did}/").status_code == 204
    assert c.get("/api/v1/delegations/").json()["count"] == 0
    assert count("delegation.deleted") == 1


# --- reassign, add assignee, bulk --------------------------------------------------------------


def test_reassign_by_assignee_and_admin(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    r = api_client(p.bob).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.carl.pk)}, format="json")
    assert r.status_code == 404  # cannot see it
    r = api_client(p.alice).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.carl.pk)}, format="json")
    assert r.status_code == 403
    r = api_client(p.mark).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.alice.pk)}, format="json")
    assert r.status_code == 400  # the requester cannot approve
    assert count("task.reassigned") == 0
    r = api_client(p.mark).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.carl.pk)}, format="json")
    assert r.status_code == 200
    assert [a["user"] for a in r.json()["assignees"] if a["is_active"]] == [str(p.carl.pk)]
    assert decide(p.mark, task).status_code == 403
    r = api_client(p.admin).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.lena.pk)}, format="json")
    assert r.status_code == 200
    assert count("task.reassigned") == 2
    assert Notification.objects.filter(kind="task_reassigned", recipient=p.lena).count() == 1
    assert decide(p.lena, task).status_code == 200
    r = api_client(p.admin).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.bob.pk)}, format="json")
    assert r.status_code == 409


def as_system(task, action, **kwargs):
    """Run a lifecycle action as the system does (the SLA scan): lock, act, flush; no actor."""
    outbox = Outbox(actor=None)
    with transaction.atomic():
        request, locked = lock_task(organization_id=task.organization_id, task_id=task.pk)
        out = action(request, locked, outbox=outbox, **kwargs)
        outbox.flush()
    return out, locked


def test_add_assignee_and_system_decision(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark, mode="all")])
    rid = submit(p.alice, v)["id"]
    task = open_task(rid)
    a, _ = as_system(task, do_add_assignee, target=p.carl, reason="escalation")
    assert a.reason == "escalation"
    assert lifecycle.task_add_assignee(actor=p.admin, task_id=task.pk, user=p.carl).pk == a.pk  # idempotent
    decide(p.mark, task)
    assert status(rid) == "pending"  # carl must approve too (all)
    _, t = as_system(task, do_settle, value="approved", comment="")
    assert t.status == "approved" and status(rid) == "approved"
    row = AuditLog.objects.filter(action="task.approved").order_by("-sequence").first()
    assert row.actor_id is None and row.changes["system"] is True


def test_bulk_approve_per_task_results(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    t1 = open_task(submit(p.alice, v)["id"])
    t2 = open_task(submit(p.alice, v)["id"])
    v2 = make_flow(org, [user_step(1, "C", p.carl)])
    t3 = open_task(submit(p.alice, v2)["id"])
    r = api_client(p.mark).post(
        "/api/v1/tasks/bulk-approve/", {"tasks": [str(t1.pk), str(t3.pk), str(t2.pk)], "comment": "ok"}, format="json"
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["ok"] for x in res] == [True, False, True]
    assert res[1]["error"]["code"] == "not_found"
    assert ApprovalTask.objects.get(pk=t3.pk).status == "pending"
    assert r.json()["approved"] == 2


def test_tasks_inbox_filters_and_shape(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    rid = submit(p.alice, v)["id"]
    r = api_client(p.mark).get("/api/v1/tasks/")
    [item] = r.json()["results"]
    assert {"id", "request", "request_title", "step", "stage", "status", "due_at", "on_behalf_of"} <= set(item)
    assert item["request"] == rid and item["on_behalf_of"] is None
    decide(p.mark, open_task(rid))
    assert api_client(p.mark).get("/api/v1/tasks/").json()["count"] == 0
    assert api_client(p.mark).get("/api/v1/tasks/?status=approved").json()["count"] == 1
    assert api_client(p.mark).get("/api/v1/tasks/?status=all").json()["count"] == 1
    assert api_client(p.bob).get("/api/v1/tasks/?status=all").json()["count"] == 0


def test_tasks_list_query_count_constant(org, p):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    v = make_flow(org, [user_step(1, "M", p.mark)])
    for i in range(10):
        submit(p.alice, v, title=f"R{i}")
    delegate(p.fiona, p.mark)  # exercise the delegation branch too
    assert api_client(p.mark).get("/api/v1/auth/me/").status_code == 200  # both counts with the caller cached
    counts = []
    for size in (1, 10):  # one row vs many: an N+1 shows at 10 as at 50
        with CaptureQueriesContext(connection) as ctx:
            r = api_client(p.mark).get(f"/api/v1/tasks/?page_size={size}")
        assert len(r.json()["results"]) == size
        counts.append(len(ctx.captured_queries))
    # the client's token (an INSERT), the delegations, the page with its total; the caller: cached
    assert counts == [3, 3], counts


def test_idempotent_approve(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    task = open_task(submit(p.alice, v)["id"])
    r1 = decide(p.mark, task, HTTP_IDEMPOTENCY_KEY="a1")
    r2 = decide(p.mark, task, HTTP_IDEMPOTENCY_KEY="a1")
    assert r1.status_code == r2.status_code == 200 and r1.json() == r2.json()
    assert count("task.approved") == 1
    assert decide(p.mark, task, HTTP_IDEMPOTENCY_KEY="a2").status_code == 409


@pytest.mark.parametrize("via_delegate", [False, True])
def test_a_decision_answers_with_the_committed_task(org, p, via_delegate):
    # The answer is built from the instances the engine changed, not re-read: it must equal a fresh read.
    v = make_flow(org, [user_step(1, "M", p.mark)])
    rid = submit(p.alice, v)["id"]
    if via_delegate:  # after routing: the delegate decides through the delegation branch
        delegate(p.mark, p.bob)
    task = open_task(rid)
    actor = p.bob if via_delegate else p.mark
    answer = decide(actor, task).json()
    assert answer["status"] == "approved" and answer["request_status"] == "approved"
    assert answer == api_client(actor).get(f"/api/v1/tasks/{task.pk}/").json()


def test_condition_over_budget_fails_safe_and_is_audited(org, p):
    """A condition that runs out of its operation budget makes the step apply and records task.condition_error."""
    v = make_flow(
        org,
        [user_step(1, "Pairs", p.mark, condition="items.all(a, items.all(b, a + b >= 0))")],
        form_schema={"type": "object"},
    )
    rid = submit(p.alice, v, {"items": list(range(150))})["id"]
    assert open_task(rid, "Pairs").assignments.get().assignee == p.mark
    row = AuditLog.objects.get(action="task.condition_error")
    assert row.changes["step"] == "Pairs"
    assert "more than 5000 operations" in row.changes["error"]
