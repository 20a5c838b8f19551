"""Concurrent decisions on real PostgreSQL: threads with their own connections."""

import threading

import pytest
from django.db import connection

from approvals.models import ApprovalTask, TaskStatus
from auditlogs.models import AuditLog
from core.testing import api_client, make_user
from requests.models import Request
from requests.tests.factories import People, make_flow, role_step, user_step

pytestmark = pytest.mark.django_db(transaction=True)


def run_parallel(calls):
    """Start all calls at the same moment; each thread uses (and closes) its own connection."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def post(user, url, body=None):
    client = api_client(user)
    return lambda: client.post(url, body or {}, format="json").status_code


@pytest.fixture
def p(org):
    return People(org)


def submit(user, version, amount=100):
    return (
        api_client(user)
        .post(
            "/api/v1/requests/",
            {
                "workflow": version.definition.key,
                "title": "T",
                "data": {"amount": amount, "vendor": "v"},
                "submit": True,
            },
            format="json",
        )
        .json()["id"]
    )


def test_ten_simultaneous_approves_one_wins(org, p):
    approvers = [make_user(org, roles=["finance_approver"]) for _ in range(8)] + [p.fiona, p.frank]
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="any"), user_step(2, "CFO", p.carl)])
    rid = submit(p.alice, v)
    task = ApprovalTask.objects.get(request_id=rid)
    codes = run_parallel([post(u, f"/api/v1/tasks/{task.pk}/approve/") for u in approvers])
    assert sorted(codes) == [200] + [409] * 9, codes
    task.refresh_from_db()
    assert task.status == TaskStatus.APPROVED
    assert task.assignments.filter(decision="approved").count() == 1
    assert AuditLog.objects.filter(action="task.approved").count() == 1
    assert ApprovalTask.objects.filter(request_id=rid, stage=2).count() == 1


def test_same_user_ten_times(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark), user_step(2, "C", p.carl)])
    rid = submit(p.alice, v)
    task = ApprovalTask.objects.get(request_id=rid)
    codes = run_parallel([post(p.mark, f"/api/v1/tasks/{task.pk}/approve/") for _ in range(10)])
    assert sorted(codes) == [200] + [409] * 9, codes
    assert ApprovalTask.objects.filter(request_id=rid, stage=2).count() == 1


def test_last_two_parallel_tasks_activate_next_stage_once(org, p):
    v = make_flow(org, [user_step(1, "A", p.fiona), user_step(1, "B", p.lena), user_step(2, "C", p.carl)])
    for _ in range(3):  # a few rounds make an interleaving bug likely to show
        rid = submit(p.alice, v)
        a = ApprovalTask.objects.get(request_id=rid, step__name="A")
        b = ApprovalTask.objects.get(request_id=rid, step__name="B")
        codes = run_parallel(
            [post(p.fiona, f"/api/v1/tasks/{a.pk}/approve/"), post(p.lena, f"/api/v1/tasks/{b.pk}/approve/")]
        )
        assert codes == [200, 200]
        stage2 = ApprovalTask.objects.filter(request_id=rid, stage=2)
        assert stage2.count() == 1 and stage2.get().status == "pending"
        assert Request.objects.get(pk=rid).current_stage == 2
        assert AuditLog.objects.filter(action="task.assigned", target_id=str(stage2.get().pk)).count() == 1


def test_every_assignee_of_an_all_task_at_once_settles_it_once(org, p):
    # Each decision reads the assignments after it holds the lock, so the last one to get the
    # lock sees every decision committed before it and settles the task (issue 14 moved this read).
    approvers = [make_user(org, roles=["cfo_office"]) for _ in range(4)]
    v = make_flow(org, [role_step(1, "Board", "cfo_office", mode="all"), user_step(2, "CFO", p.carl)])
    for _ in range(3):
        rid = submit(p.alice, v)
        task = ApprovalTask.objects.get(request_id=rid, stage=1)
        codes = run_parallel([post(u, f"/api/v1/tasks/{task.pk}/approve/") for u in approvers])
        assert codes == [200] * 4, codes
        task.refresh_from_db()
        assert task.status == TaskStatus.APPROVED and task.outcome_reason == "all_approved"
        assert task.assignments.filter(decision="approved").count() == 4
        assert ApprovalTask.objects.filter(request_id=rid, stage=2, status="pending").count() == 1
        assert Request.objects.get(pk=rid).current_stage == 2


def test_simultaneous_resubmits_one_wins(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    rid = submit(p.alice, v)
    task = ApprovalTask.objects.get(request_id=rid)
    api_client(p.mark).post(f"/api/v1/tasks/{task.pk}/request-changes/", {"comment": "fix"}, format="json")
    codes = run_parallel([post(p.alice, f"/api/v1/requests/{rid}/resubmit/") for _ in range(5)])
    assert sorted(codes) == [200] + [409] * 4, codes
    req = Request.objects.get(pk=rid)
    assert req.round == 2 and req.status == "pending"
    assert ApprovalTask.objects.filter(request_id=rid, round=2).count() == 1
    assert AuditLog.objects.filter(action="request.resubmitted").count() == 1


def test_concurrent_creates_get_distinct_references(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)], prefix="CON")
    users = [p.alice, p.bob, p.fiona, p.frank, p.lena, p.carl]
    codes = run_parallel(
        [
            post(
                u,
                "/api/v1/requests/",
                {"workflow": v.definition.key, "title": "x", "data": {"amount": 1, "vendor": "v"}},
            )
            for u in users
        ]
    )
    assert codes == [201] * len(users)
    refs = sorted(Request.objects.values_list("reference", flat=True))
    assert refs == [f"CON-{i:06d}" for i in range(1, len(users) + 1)]
