"""Statements of one decision, counted exactly so a regression fails here (issue 14).

The route is the peer benchmark's two-level approval: stage 1 the requester's manager, stage 2
one named user, each with an SLA on the business calendar. Each count is taken on a second
request after a first one went the same way (warm in-process caches, as in a serving process);
SAVEPOINT/RELEASE stand where a served decision sends BEGIN/COMMIT, so the count is the same.
"""

import pytest

from approvals.lifecycle.services import task_decide
from approvals.models import ApprovalTask, TaskStatus
from auditlogs.models import AuditLog
from notifications.models import EmailDelivery, Notification
from requests import services as request_services
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db

# Ceilings of issue 14: a decision that advances a stage <= 12, a final decision <= 10.
# The webhook outbox reads the organization's active endpoints from the in-process cache.
ADVANCE = 7
FINAL = 6


@pytest.fixture
def people(org):
    return People(org)


@pytest.fixture
def two_level(org, people):
    return make_flow(
        org,
        [
            {"stage": 1, "name": "Manager approval", "approver_type": "requester_manager", "sla_hours": 8},
            user_step(2, "Finance approval", people.fiona, sla_hours=16),
        ],
        prefix="TWO",
    )


def _submit(people, flow, title):
    return request_services.request_create(
        actor=people.alice,
        workflow=flow.definition.key,
        title=title,
        data={"amount": 100, "vendor": "ACME"},
        submit=True,
    )


def _task(request, stage):
    return ApprovalTask.objects.get(request=request, stage=stage, status=TaskStatus.PENDING)


def test_decision_that_advances_a_stage(people, two_level, django_assert_num_queries):
    warm = _submit(people, two_level, "warm")
    task_decide(actor=people.mark, task_id=_task(warm, 1).pk, decision="approve")
    request = _submit(people, two_level, "counted")
    task = _task(request, 1)
    audits, notes = AuditLog.objects.count(), Notification.objects.count()

    with django_assert_num_queries(ADVANCE):
        decided = task_decide(actor=people.mark, task_id=task.pk, decision="approve")

    assert decided.status == TaskStatus.APPROVED
    nxt = _task(request, 2)
    assert [a.assignee_id for a in nxt.assignments.all()] == [people.fiona.pk]
    assert nxt.due_at is not None
    assert list(AuditLog.objects.order_by("sequence").values_list("action", flat=True)[audits:]) == [
        "task.approved",
        "task.assigned",
    ]
    assert Notification.objects.count() == notes + 1
    assert EmailDelivery.objects.filter(notification__recipient=people.fiona).exists()


def test_final_decision(people, two_level, django_assert_num_queries):
    warm = _submit(people, two_level, "warm")
    task_decide(actor=people.mark, task_id=_task(warm, 1).pk, decision="approve")
    task_decide(actor=people.fiona, task_id=_task(warm, 2).pk, decision="approve")
    request = _submit(people, two_level, "counted")
    task_decide(actor=people.mark, task_id=_task(request, 1).pk, decision="approve")
    task = _task(request, 2)
    audits = AuditLog.objects.count()

    with django_assert_num_queries(FINAL):
        decided = task_decide(actor=people.fiona, task_id=task.pk, decision="approve")

    assert decided.request.status == "approved"
    request.refresh_from_db()
    assert request.status == "approved" and request.completed_at is not None
    assert list(AuditLog.objects.order_by("sequence").values_list("action", flat=True)[audits:]) == [
        "task.approved",
        "request.approved",
    ]
    assert Notification.objects.filter(recipient=people.alice, kind="request_approved", request=request).exists()
