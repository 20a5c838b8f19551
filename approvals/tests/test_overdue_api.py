"""SLA fields and the ``overdue`` filter on ``tasks/`` and ``requests/`` (issue 7, point 6)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalTask, TaskStatus
from core.testing import api_client, error_code
from requests.models import Request
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


@pytest.fixture
def flow(org, p):
    # Two parallel steps in stage 1: mark and fiona each get a task per request.
    return make_flow(org, [user_step(1, "M", p.mark), user_step(1, "F", p.fiona)])


def submit(user, version, title):
    r = api_client(user).post(
        "/api/v1/requests/",
        {"workflow": version.definition.key, "title": title, "data": {"amount": 1, "vendor": "v"}, "submit": True},
        format="json",
    )
    assert r.status_code == 201, r.json()
    return r.json()["id"]


def task(rid, name):
    return ApprovalTask.objects.get(request_id=rid, step__name=name)


def set_sla(rid, name, *, due_in_hours=None, level=0):
    due = timezone.now() + timedelta(hours=due_in_hours) if due_in_hours is not None else None
    ApprovalTask.objects.filter(request_id=rid, step__name=name).update(due_at=due, escalation_level=level)


@pytest.fixture
def reqs(p, flow):
    """late: mark's task 2 h past due at level 2, fiona's due tomorrow at level 1;
    on_time: both due tomorrow, level 0; no_sla: no deadlines."""
    late = submit(p.alice, flow, "late")
    on_time = submit(p.alice, flow, "on time")
    no_sla = submit(p.alice, flow, "no sla")
    set_sla(late, "M", due_in_hours=-2, level=2)
    set_sla(late, "F", due_in_hours=24, level=1)
    set_sla(on_time, "M", due_in_hours=24)
    set_sla(on_time, "F", due_in_hours=24)
    set_sla(no_sla, "M")
    set_sla(no_sla, "F")
    return {"late": late, "on_time": on_time, "no_sla": no_sla}


def by_request(items):
    return {item["request"]: item for item in items}


# --- tasks/ ------------------------------------------------------------------------------------


def test_tasks_fields(p, reqs):
    items = by_request(api_client(p.mark).get("/api/v1/tasks/").json()["results"])
    assert set(items) == set(reqs.values())
    late, on_time, no_sla = items[reqs["late"]], items[reqs["on_time"]], items[reqs["no_sla"]]
    assert late["overdue"] is True and late["escalation_level"] == 2 and late["due_at"] is not None
    assert on_time["overdue"] is False and on_time["escalation_level"] == 0 and on_time["due_at"] is not None
    assert no_sla["overdue"] is False and no_sla["escalation_level"] == 0 and no_sla["due_at"] is None
    detail = api_client(p.mark).get(f"/api/v1/tasks/{late['id']}/").json()
    assert detail["overdue"] is True and detail["escalation_level"] == 2


def test_tasks_overdue_filter(p, reqs):
    mark = api_client(p.mark)
    r = mark.get("/api/v1/tasks/?overdue=true")
    assert r.status_code == 200
    assert [i["request"] for i in r.json()["results"]] == [reqs["late"]]
    r = mark.get("/api/v1/tasks/?overdue=false")
    assert r.status_code == 200
    assert {i["request"] for i in r.json()["results"]} == {reqs["on_time"], reqs["no_sla"]}
    assert all(i["overdue"] is False for i in r.json()["results"])
    # fiona's task on the late request is not itself overdue
    assert api_client(p.fiona).get("/api/v1/tasks/?overdue=true").json()["count"] == 0
    assert api_client(p.fiona).get("/api/v1/tasks/?overdue=false").json()["count"] == 3
    # composes with status: a decided task past its due_at is not overdue
    assert mark.get("/api/v1/tasks/?overdue=true&status=all").json()["count"] == 1
    r = mark.get("/api/v1/tasks/?overdue=maybe")
    assert r.status_code == 400 and error_code(r) == "validation_error"
    assert "overdue" in r.json()["error"]["details"]


def test_decided_task_past_due_is_not_overdue(p, reqs):
    t = task(reqs["late"], "M")
    r = api_client(p.mark).post(f"/api/v1/tasks/{t.pk}/approve/", {"comment": ""}, format="json")
    assert r.status_code == 200 and r.json()["overdue"] is False
    assert api_client(p.mark).get("/api/v1/tasks/?overdue=true&status=all").json()["count"] == 0
    # the request is still pending (fiona's task), but nothing of it is overdue any more
    item = api_client(p.admin).get(f"/api/v1/requests/{reqs['late']}/").json()
    assert item["status"] == "pending" and item["overdue"] is False and item["escalation_level"] == 1


def test_tasks_overdue_query_count_constant(p, flow):
    for i in range(10):
        rid = submit(p.alice, flow, f"R{i}")
        set_sla(rid, "M", due_in_hours=-1, level=1)
    assert api_client(p.mark).get("/api/v1/auth/me/").status_code == 200  # both counts with the caller cached
    counts = []
    for size in (1, 10):  # one row vs many: an N+1 shows at 10 as at 50
        with CaptureQueriesContext(connection) as ctx:
            r = api_client(p.mark).get(f"/api/v1/tasks/?overdue=true&page_size={size}")
        assert r.status_code == 200 and len(r.json()["results"]) == size
        assert all(i["overdue"] and i["escalation_level"] == 1 for i in r.json()["results"])
        counts.append(len(ctx.captured_queries))
    assert counts == [3, 3], counts  # as without the filter (test_engine.test_tasks_list_query_count_constant)


# --- requests/ ---------------------------------------------------------------------------------


def test_requests_list_fields(p, reqs):
    items = {i["id"]: i for i in api_client(p.admin).get("/api/v1/requests/").json()["results"]}
    assert (items[reqs["late"]]["overdue"], items[reqs["late"]]["escalation_level"]) == (True, 2)
    assert (items[reqs["on_time"]]["overdue"], items[reqs["on_time"]]["escalation_level"]) == (False, 0)
    assert (items[reqs["no_sla"]]["overdue"], items[reqs["no_sla"]]["escalation_level"]) == (False, 0)


def test_request_detail_fields(p, reqs):
    body = api_client(p.alice).get(f"/api/v1/requests/{reqs['late']}/").json()
    assert body["overdue"] is True and body["escalation_level"] == 2
    tasks = {t["step_name"]: t for t in body["tasks"]}
    assert (tasks["M"]["overdue"], tasks["M"]["escalation_level"]) == (True, 2)
    assert (tasks["F"]["overdue"], tasks["F"]["escalation_level"]) == (False, 1)
    assert tasks["M"]["due_at"] and tasks["F"]["due_at"]
    body = api_client(p.alice).get(f"/api/v1/requests/{reqs['on_time']}/").json()
    assert body["overdue"] is False and body["escalation_level"] == 0


def test_requests_overdue_filter(p, reqs):
    admin = api_client(p.admin)
    r = admin.get("/api/v1/requests/?overdue=true")
    assert r.status_code == 200 and [i["id"] for i in r.json()["results"]] == [reqs["late"]]
    r = admin.get("/api/v1/requests/?overdue=false")
    assert r.status_code == 200 and {i["id"] for i in r.json()["results"]} == {reqs["on_time"], reqs["no_sla"]}
    # visibility still applies: bob takes part in nothing
    assert api_client(p.bob).get("/api/v1/requests/?overdue=true").json()["count"] == 0
    r = admin.get("/api/v1/requests/?overdue=sometimes")
    assert r.status_code == 400 and error_code(r) == "validation_error"
    assert "overdue" in r.json()["error"]["details"]


def test_request_overdue_ignores_tasks_not_pending(p, reqs):
    # A cancelled request keeps its tasks' past due_at, but none is pending any more.
    ApprovalTask.objects.filter(request_id=reqs["late"]).update(status=TaskStatus.CANCELLED)
    Request.objects.filter(pk=reqs["late"]).update(status="cancelled")
    body = api_client(p.admin).get(f"/api/v1/requests/{reqs['late']}/").json()
    assert body["overdue"] is False and body["escalation_level"] == 0
    assert api_client(p.admin).get("/api/v1/requests/?overdue=true").json()["count"] == 0


def test_requests_overdue_query_count_constant(p, flow):
    for i in range(10):
        rid = submit(p.alice, flow, f"R{i}")
        set_sla(rid, "M", due_in_hours=-1, level=3)
    # The org admin sees every request; a requester's visibility also reads their delegations (one more); the caller
    # comes from the process's copy (accounts/auth_cache.py): warmed first, so both counts are warm.
    for client, statements in ((api_client(p.admin), 2), (api_client(p.alice), 3)):
        assert client.get("/api/v1/auth/me/").status_code == 200
        counts = []
        for size in (1, 10):  # one row vs many: an N+1 shows at 10 as at 50
            with CaptureQueriesContext(connection) as ctx:
                r = client.get(f"/api/v1/requests/?overdue=true&page_size={size}")
            assert r.status_code == 200 and len(r.json()["results"]) == size
            assert all(i["overdue"] and i["escalation_level"] == 3 for i in r.json()["results"])
            counts.append(len(ctx.captured_queries))
        assert counts == [statements, statements], counts
