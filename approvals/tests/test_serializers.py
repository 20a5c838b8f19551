"""approvals.serializers.task_detail_payload answers what TaskDetailSerializer answers, byte for byte
once rendered, for the tasks the decision services return and the detail reads (the serializer
stays the schema of a task's detail)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request as ApiRequest
from rest_framework.test import APIRequestFactory

from approvals import selectors
from approvals import services as approval_services
from approvals.lifecycle.services import task_decide, task_reassign, task_retract
from approvals.models import ApprovalTask, TaskStatus
from approvals.serializers import TaskDetailSerializer, task_detail_payload
from requests import services as request_services
from requests.tests.factories import People, make_flow, purchase_flow, role_step, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def _same(task, user) -> bytes:
    context = ApiRequest(APIRequestFactory().post("/"))
    context.user = user
    payload = JSONRenderer().render(task_detail_payload(task, user=user))
    assert payload == JSONRenderer().render(TaskDetailSerializer(task, context={"request": context}).data)
    return payload


def _read(task_id, org):
    return selectors.task_detail_queryset(organization_id=org.pk).get(pk=task_id)


def _submit(p, flow, data=None):
    return request_services.request_create(
        actor=p.alice,
        workflow=flow.definition.key,
        title="Laptop",
        data=data or {"amount": 5, "vendor": "v"},
        submit=True,
    )


def _pending(request, **kw):
    return ApprovalTask.objects.get(request=request, status=TaskStatus.PENDING, **kw)


def test_decisions_as_the_services_return_them_and_as_read(org, p):
    flow = purchase_flow(org)
    request = _submit(p, flow, {"amount": 3000, "vendor": "ACME"})
    task = _pending(request)
    _same(_read(task.pk, org), p.mark)  # pending
    decided = task_decide(actor=p.mark, task_id=task.pk, decision="approve", comment="fine ✓")
    _same(decided, p.mark)  # the approve answer: the instance the service returns
    _same(_read(task.pk, org), p.admin)  # read by someone who is not an assignee
    legal = ApprovalTask.objects.get(request=request, step__name="Legal review")
    assert b'"skipped"' in _same(_read(legal.pk, org), p.admin)  # no assignees
    finance = _pending(request, step__name="Finance review")
    _same(task_decide(actor=p.fiona, task_id=finance.pk, decision="approve"), p.fiona)  # one of two (all)
    _same(task_decide(actor=p.frank, task_id=finance.pk, decision="reject", comment="no"), p.frank)

    returned = _submit(p, make_flow(org, [user_step(1, "First", p.mark)]))
    _same(task_decide(actor=p.mark, task_id=_pending(returned).pk, decision="request_changes", comment="?"), p.mark)


def test_delegated_reassigned_and_retracted(org, p):
    flow = make_flow(org, [user_step(1, "First", p.mark, sla_hours=8), user_step(2, "Second", p.fiona)])
    now = timezone.now()
    approval_services.delegation_create(
        actor=p.mark, to_user=p.bob, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1)
    )
    request = _submit(p, flow)
    task = _pending(request)
    assert str(p.mark.pk).encode() in _same(_read(task.pk, org), p.bob)  # the delegate acts for mark
    _same(_read(task.pk, org), p.mark)
    _same(task_decide(actor=p.bob, task_id=task.pk, decision="approve", comment="for Mark"), p.bob)

    second = _pending(request)
    _same(task_reassign(actor=p.fiona, task_id=second.pk, to_user=p.frank), p.fiona)  # fiona's place inactive
    _same(task_reassign(actor=p.admin, task_id=second.pk, to_user=p.fiona, from_user=p.frank), p.fiona)
    _same(_read(second.pk, org), p.fiona)  # fiona: an inactive and an active assignment

    other = _submit(p, make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")]))
    both = _pending(other)
    task_decide(actor=p.fiona, task_id=both.pk, decision="approve")
    _same(task_retract(actor=p.fiona, task_id=both.pk, comment="too soon"), p.fiona)


def test_an_overdue_escalated_task_in_another_time_zone(org, p):
    request = _submit(p, make_flow(org, [user_step(1, "First", p.mark, sla_hours=4)]))
    task = _pending(request)
    ApprovalTask.objects.filter(pk=task.pk).update(due_at=timezone.now() - timedelta(hours=1), escalation_level=3)
    with timezone.override("America/St_Johns"):
        answer = _same(_read(task.pk, org), p.mark)
    assert b'"overdue":true' in answer and b'"escalation_level":3' in answer and b"-03:30" in answer
