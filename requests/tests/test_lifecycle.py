"""Request lifecycle through the API: create/draft/submit, PATCH, transitions, 409s, visibility."""

import pytest

from approvals.models import ApprovalTask, TaskStatus
from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_user
from notifications.models import Notification
from requests.models import Request
from requests.tests.factories import People, make_flow, purchase_flow, user_step
from workflows.models import WorkflowDefinition

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org):
    return People(org)


@pytest.fixture
def flow(org, people):
    return purchase_flow(org)


def actions(request_id=None):
    return list(AuditLog.objects.order_by("sequence").values_list("action", flat=True))


def create(user, flow, data=None, submit=False, title="Laptop", **extra):
    return api_client(user).post(
        "/api/v1/requests/",
        {
            "workflow": flow.definition.key,
            "title": title,
            "data": data or {"amount": 3000, "vendor": "ACME"},
            "submit": submit,
        },
        format="json",
        **extra,
    )


def test_create_draft_then_submit(people, flow):
    r = create(people.alice, flow)
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["status"] == "draft"
    assert body["reference"] == "PUR-000001"
    assert body["tasks"] == [] and body["comments"] == [] and body["attachments"] == []
    r2 = api_client(people.alice).post(f"/api/v1/requests/{body['id']}/submit/")
    assert r2.status_code == 200, r2.json()
    assert r2.json()["status"] == "pending"
    assert r2.json()["current_stage"] == 1
    [task] = r2.json()["tasks"]
    assert task["stage"] == 1 and task["status"] == "pending"
    assert task["assignees"][0]["user"] == str(people.mark.pk)
    assert {"id", "step", "stage", "status", "due_at", "assignees"} <= set(task)
    assert {"user", "decision", "on_behalf_of"} <= set(task["assignees"][0])
    assert "request.created" in actions() and "request.submitted" in actions() and "task.assigned" in actions()
    kinds = set(Notification.objects.values_list("kind", "recipient"))
    assert ("request_submitted", people.alice.pk) in kinds
    assert ("task_assigned", people.mark.pk) in kinds


def test_reference_counter_per_definition(people, flow, org):
    other = make_flow(org, [user_step(1, "One", people.mark)], prefix="OTH")
    refs = [create(people.alice, flow).json()["reference"] for _ in range(3)]
    assert refs == ["PUR-000001", "PUR-000002", "PUR-000003"]
    assert create(people.alice, other).json()["reference"] == "OTH-000001"


def test_reference_skips_numbers_taken_by_a_shared_prefix_and_grows_past_six_digits(people, flow, org):
    twin = make_flow(org, [user_step(1, "One", people.mark)], prefix="PUR")  # the same prefix
    assert create(people.alice, flow).json()["reference"] == "PUR-000001"
    assert create(people.alice, twin).json()["reference"] == "PUR-000002"  # 000001 is taken
    assert create(people.alice, flow).json()["reference"] == "PUR-000003"  # 000002 is taken by the twin
    refs = set(Request.objects.values_list("reference", flat=True))
    assert len(refs) == Request.objects.count()  # never a duplicate
    WorkflowDefinition.objects.filter(pk=flow.definition.pk).update(reference_counter=999_999)
    assert create(people.alice, flow).json()["reference"] == "PUR-1000000"


def test_create_by_id_and_key(people, flow):
    r = api_client(people.alice).post(
        "/api/v1/requests/",
        {"workflow": str(flow.definition_id), "title": "x", "data": {"amount": 1, "vendor": "v"}},
        format="json",
    )
    assert r.status_code == 201


def test_form_schema_errors_per_field(people, flow):
    r = create(people.alice, flow, data={"amount": "lots"}, submit=True)
    assert r.status_code == 400
    assert error_code(r) == "validation_error"
    details = r.json()["error"]["details"]
    assert "data.amount" in details and "data.vendor" in details
    assert Request.objects.count() == 0


def test_draft_allows_missing_required_but_submit_does_not(people, flow):
    r = create(people.alice, flow, data={"amount": 5})
    assert r.status_code == 201
    r2 = api_client(people.alice).post(f"/api/v1/requests/{r.json()['id']}/submit/")
    assert r2.status_code == 400 and "data.vendor" in r2.json()["error"]["details"]
    assert Request.objects.get().status == "draft"
    assert not ApprovalTask.objects.exists()


def test_unknown_workflow_404(people):
    r = api_client(people.alice).post(
        "/api/v1/requests/", {"workflow": "nope", "title": "x", "data": {}}, format="json"
    )
    assert r.status_code == 404 and error_code(r) == "not_found"


def test_create_needs_permission(org, people, flow):
    nobody = make_user(org, roles=["auditor"])
    r = create(nobody, flow)
    assert r.status_code == 403 and Request.objects.count() == 0


def test_patch_only_in_draft_or_changes_requested(people, flow):
    rid = create(people.alice, flow).json()["id"]
    c = api_client(people.alice)
    r = c.patch(f"/api/v1/requests/{rid}/", {"title": "New", "data": {"amount": 9, "vendor": "B"}}, format="json")
    assert r.status_code == 200 and r.json()["title"] == "New" and r.json()["data"]["amount"] == 9
    assert "request.updated" in actions()
    c.post(f"/api/v1/requests/{rid}/submit/")
    r = c.patch(f"/api/v1/requests/{rid}/", {"title": "Newer"}, format="json")
    assert r.status_code == 409 and error_code(r) == "invalid_transition"
    assert Request.objects.get().title == "New"


def test_patch_by_other_user_denied(people, flow, org):
    rid = create(people.alice, flow).json()["id"]
    r = api_client(people.bob).patch(f"/api/v1/requests/{rid}/", {"title": "hacked"}, format="json")
    assert r.status_code == 404
    r = api_client(people.admin).patch(f"/api/v1/requests/{rid}/", {"title": "hacked"}, format="json")
    assert r.status_code == 403
    assert Request.objects.get().title == "Laptop"


@pytest.mark.parametrize(
    "path,from_status",
    [
        ("submit", "pending"),
        ("resubmit", "pending"),
        ("resubmit", "draft"),
        ("cancel", "draft"),
        ("withdraw", "withdrawn"),
    ],
)
def test_invalid_transitions_409_change_nothing(people, flow, path, from_status):
    c = api_client(people.alice)
    rid = create(people.alice, flow, submit=from_status == "pending").json()["id"]
    if from_status == "withdrawn":
        c.post(f"/api/v1/requests/{rid}/withdraw/")
    actor = api_client(people.admin) if path == "cancel" else c
    before_rows = AuditLog.objects.count()
    before = Request.objects.values().get()
    tasks_before = list(ApprovalTask.objects.values_list("id", "status"))
    r = actor.post(f"/api/v1/requests/{rid}/{path}/")
    assert r.status_code == 409, r.json()
    assert error_code(r) == "invalid_transition"
    assert Request.objects.values().get() == before
    assert list(ApprovalTask.objects.values_list("id", "status")) == tasks_before
    assert AuditLog.objects.count() == before_rows


def test_withdraw_cancels_open_tasks(people, flow):
    rid = create(people.alice, flow, submit=True).json()["id"]
    r = api_client(people.alice).post(f"/api/v1/requests/{rid}/withdraw/")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert r.json()["tasks"][0]["status"] == "cancelled"
    assert "request.withdrawn" in actions() and "task.cancelled" in actions()
    # Terminal: nothing more.
    r = api_client(people.alice).post(f"/api/v1/requests/{rid}/withdraw/")
    assert r.status_code == 409


def test_withdraw_only_requester(people, flow):
    rid = create(people.alice, flow, submit=True).json()["id"]
    r = api_client(people.mark).post(f"/api/v1/requests/{rid}/withdraw/")
    assert r.status_code == 403
    assert Request.objects.get().status == "pending"


def test_cancel_needs_cancel_any(people, flow):
    rid = create(people.alice, flow, submit=True).json()["id"]
    r = api_client(people.alice).post(f"/api/v1/requests/{rid}/cancel/")
    assert r.status_code == 403
    assert Request.objects.get().status == "pending"
    r = api_client(people.admin).post(f"/api/v1/requests/{rid}/cancel/", {"reason": "budget freeze"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert ApprovalTask.objects.get().status == TaskStatus.CANCELLED
    row = AuditLog.objects.get(action="request.cancelled")
    assert row.changes["comment"] == "budget freeze"


def test_visibility(people, flow, org, other_admin):
    rid = create(people.alice, flow, submit=True).json()["id"]
    assert api_client(people.alice).get(f"/api/v1/requests/{rid}/").status_code == 200
    assert api_client(people.mark).get(f"/api/v1/requests/{rid}/").status_code == 200  # assignee
    assert api_client(people.admin).get(f"/api/v1/requests/{rid}/").status_code == 200  # view_all
    r = api_client(people.bob).get(f"/api/v1/requests/{rid}/")
    assert r.status_code == 404 and error_code(r) == "not_found"
    assert api_client(other_admin).get(f"/api/v1/requests/{rid}/").status_code == 404
    assert api_client(people.bob).get("/api/v1/requests/").json()["count"] == 0
    assert api_client(people.mark).get("/api/v1/requests/").json()["count"] == 1
    # Past assignee: reassigned away still sees it.
    task = ApprovalTask.objects.get()
    r = api_client(people.mark).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(people.bob.pk)}, format="json")
    assert r.status_code == 200, r.json()
    assert api_client(people.mark).get(f"/api/v1/requests/{rid}/").status_code == 200
    assert api_client(people.bob).get(f"/api/v1/requests/{rid}/").status_code == 200


def test_list_filters_and_ordering(people, flow, org):
    c = api_client(people.alice)
    a = create(people.alice, flow, title="Alpha laptop").json()
    b = create(people.alice, flow, title="Beta chair", submit=True).json()
    create(people.bob, flow, title="Bob's", submit=True)
    admin = api_client(people.admin)
    assert admin.get("/api/v1/requests/").json()["count"] == 3
    assert admin.get("/api/v1/requests/?status=draft").json()["count"] == 1
    assert admin.get("/api/v1/requests/?status=pending").json()["count"] == 2
    assert c.get("/api/v1/requests/?mine=true").json()["count"] == 2
    assert admin.get("/api/v1/requests/?mine=true").json()["count"] == 0
    assert admin.get("/api/v1/requests/?search=chair").json()["results"][0]["id"] == b["id"]
    assert admin.get(f"/api/v1/requests/?search={a['reference']}").json()["count"] == 1
    assert admin.get(f"/api/v1/requests/?workflow={flow.definition.key}").json()["count"] == 3
    assert admin.get("/api/v1/requests/?workflow=other").json()["count"] == 0
    assert admin.get("/api/v1/requests/?created_after=2000-01-01").json()["count"] == 3
    assert admin.get("/api/v1/requests/?created_before=2000-01-01").json()["count"] == 0
    r = admin.get("/api/v1/requests/?created_after=garbage")
    assert r.status_code == 400 and "created_after" in r.json()["error"]["details"]
    titles = [x["title"] for x in admin.get("/api/v1/requests/?ordering=title").json()["results"]]
    assert titles == sorted(titles)
    assert admin.get("/api/v1/requests/?overdue=true").json()["count"] == 0


def test_list_query_count_constant(people, flow, django_assert_num_queries):
    for i in range(10):
        create(people.alice, flow, title=f"R{i}", submit=i % 2 == 0)
    admin = api_client(people.admin)
    alice = api_client(people.alice)
    # The org admin sees every request; a requester's visibility also reads their delegations (one more); the caller
    # comes from the process's copy (accounts/auth_cache.py): warmed first, so both counts are warm.
    for client, statements in ((admin, 2), (alice, 3)):
        assert client.get("/api/v1/auth/me/").status_code == 200
        counts = []
        for size in (1, 10):  # one row vs many: an N+1 shows at 10 as at 50
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as ctx:
                r = client.get(f"/api/v1/requests/?page_size={size}")
            assert r.status_code == 200 and len(r.json()["results"]) == size
            counts.append(len(ctx.captured_queries))
        assert counts == [statements, statements], counts


def test_idempotent_create(people, flow):
    c = api_client(people.alice)
    body = {"workflow": flow.definition.key, "title": "Once", "data": {"amount": 1, "vendor": "v"}, "submit": True}
    r1 = c.post("/api/v1/requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    r2 = c.post("/api/v1/requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert r1.status_code == r2.status_code == 201
    assert r1.json()["id"] == r2.json()["id"]
    assert r2["Idempotent-Replayed"] == "true"
    assert Request.objects.count() == 1
    assert AuditLog.objects.filter(action="request.submitted").count() == 1


def test_idempotent_transition(people, flow):
    rid = create(people.alice, flow).json()["id"]
    c = api_client(people.alice)
    r1 = c.post(f"/api/v1/requests/{rid}/submit/", HTTP_IDEMPOTENCY_KEY="s-1")
    r2 = c.post(f"/api/v1/requests/{rid}/submit/", HTTP_IDEMPOTENCY_KEY="s-1")
    assert r1.status_code == r2.status_code == 200
    assert AuditLog.objects.filter(action="request.submitted").count() == 1
    assert ApprovalTask.objects.count() == 1


def test_timeline(people, flow):
    rid = create(people.alice, flow, submit=True).json()["id"]
    task = ApprovalTask.objects.get()
    api_client(people.mark).post(f"/api/v1/tasks/{task.pk}/approve/", {"comment": "ok by me"}, format="json")
    api_client(people.alice).post(f"/api/v1/requests/{rid}/comments/", {"body": "thanks"}, format="json")
    r = api_client(people.alice).get(f"/api/v1/requests/{rid}/timeline/")
    assert r.status_code == 200
    rows = r.json()
    acts = [x["action"] for x in rows]
    assert acts[:4] == ["request.created", "request.submitted", "task.assigned", "task.approved"]
    assert "comment.added" in acts
    seqs = [x["sequence"] for x in rows]
    assert seqs == sorted(seqs)
    approved = next(x for x in rows if x["action"] == "task.approved")
    assert approved["actor"] == str(people.mark.pk) and approved["comment"] == "ok by me"
    assert api_client(people.bob).get(f"/api/v1/requests/{rid}/timeline/").status_code == 404
