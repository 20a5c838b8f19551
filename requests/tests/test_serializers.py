"""requests.serializers.request_detail_payload answers what RequestDetailSerializer answers, byte for
byte once rendered, for every shape of request (the serializer stays the schema of the detail)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from approvals import services as approval_services
from approvals.lifecycle.services import task_decide
from approvals.models import ApprovalTask, TaskStatus
from requests import selectors, services
from requests.serializers import RequestDetailSerializer, request_detail_payload
from requests.tests.factories import People, make_flow, purchase_flow, user_step

pytestmark = pytest.mark.django_db

ANY_DATA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "count": {"type": "integer"},
        "urgent": {"type": "boolean"},
        "vendor": {"type": "string"},
        "note": {"type": ["string", "null"]},
        "due": {"type": "string", "format": "date"},
        "lines": {"type": "array", "items": {"type": "object"}},
        "meta": {"type": "object"},
    },
}


@pytest.fixture
def p(org):
    return People(org)


def _same(obj) -> bytes:
    payload = JSONRenderer().render(request_detail_payload(obj))
    assert payload == JSONRenderer().render(RequestDetailSerializer(obj).data)
    return payload


def _both(p, created) -> None:
    """The create's answer (from the instance request_create returned) and the detail read back."""
    _same(selectors.created_request_detail(request=created))
    _same(selectors.request_get(user=p.admin, request_id=created.pk))


def _create(p, flow, data, *, actor=None, submit=True, title="Laptop"):
    return services.request_create(
        actor=actor or p.alice, workflow=flow.definition.key, title=title, data=data, submit=submit
    )


def _pending(request_id, **kw):
    return ApprovalTask.objects.filter(request_id=request_id, status=TaskStatus.PENDING, **kw)


def test_a_draft_and_a_submitted_request(org, p):
    flow = purchase_flow(org)
    _both(p, _create(p, flow, {"amount": 3000}, submit=False))
    _both(p, _create(p, flow, {"amount": 3000, "vendor": "ACME"}))


def test_skipped_steps_decided_tasks_and_an_approved_request(org, p):
    flow = purchase_flow(org)
    request = _create(p, flow, {"amount": 3000, "vendor": "ACME", "justification": "old one broke"})
    task_decide(actor=p.mark, task_id=_pending(request.pk).get().pk, decision="approve", comment="fine")
    answer = _same(selectors.request_get(user=p.admin, request_id=request.pk))  # legal skipped, finance: two
    assert b'"skipped"' in answer and b'"condition_false"' in answer
    task_decide(actor=p.fiona, task_id=_pending(request.pk).get().pk, decision="approve", comment="ok ✓")
    _same(selectors.request_get(user=p.admin, request_id=request.pk))  # one of two decided
    task_decide(actor=p.frank, task_id=_pending(request.pk).get().pk, decision="approve")
    _same(selectors.request_get(user=p.admin, request_id=request.pk))  # approved, CFO skipped
    skipped_all = make_flow(org, [user_step(1, "Big", p.mark, condition="amount > 1000000")])
    _both(p, _create(p, skipped_all, {"amount": 5, "vendor": "v"}))  # approved on submit, no assignments


def test_a_returned_and_a_rejected_request(org, p):
    flow = make_flow(org, [user_step(1, "First", p.mark), user_step(2, "Second", p.fiona)])
    returned = _create(p, flow, {"amount": 5, "vendor": "v"})
    task_decide(actor=p.mark, task_id=_pending(returned.pk).get().pk, decision="approve")
    task_decide(actor=p.fiona, task_id=_pending(returned.pk).get().pk, decision="request_changes", comment="why?")
    _same(selectors.request_get(user=p.admin, request_id=returned.pk))
    rejected = _create(p, flow, {"amount": 5, "vendor": "v"})
    task_decide(actor=p.mark, task_id=_pending(rejected.pk).get().pk, decision="reject", comment="no")
    _same(selectors.request_get(user=p.admin, request_id=rejected.pk))


def test_delegated_assignments(org, p):
    flow = make_flow(org, [{"stage": 1, "name": "Manager", "approver_type": "requester_manager", "sla_hours": 8}])
    now = timezone.now()
    approval_services.delegation_create(
        actor=p.mark, to_user=p.bob, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1)
    )
    request = _create(p, flow, {"amount": 5, "vendor": "v"})  # the delegate assigned for the manager
    _both(p, request)
    task_decide(actor=p.bob, task_id=_pending(request.pk).get().pk, decision="approve", comment="for Mark")
    answer = _same(selectors.request_get(user=p.admin, request_id=request.pk))
    assert str(p.mark.pk).encode() in answer


def test_overdue_and_escalated_tasks_in_another_time_zone(org, p):
    flow = make_flow(org, [user_step(1, "First", p.mark, sla_hours=4)])
    request = _create(p, flow, {"amount": 5, "vendor": "v"})
    _pending(request.pk).update(due_at=timezone.now() - timedelta(hours=1), escalation_level=2)
    with timezone.override("Asia/Kolkata"):
        answer = _same(selectors.request_get(user=p.admin, request_id=request.pk))
        _both(p, _create(p, flow, {"amount": 6, "vendor": "w"}))
    assert b'"overdue":true' in answer and b'"escalation_level":2' in answer and b"+05:30" in answer


def test_form_data_of_every_type_and_a_requester_without_a_department(org, p):
    flow = make_flow(org, [user_step(1, "First", p.mark)], form_schema=ANY_DATA)
    data = {
        "amount": 12.5,
        "count": 10**15,
        "urgent": True,
        "vendor": "Ünïcode “quoted” ✓ \\ \n",
        "note": None,
        "due": "2026-02-28",
        "lines": [{"sku": "A-1", "qty": 2, "price": 0.1}, {"sku": "B", "qty": 0}],
        "meta": {"nested": {"deep": [1, "two", None, False]}},
    }
    _both(p, _create(p, flow, data, actor=p.fiona))
    _both(p, _create(p, flow, {}, actor=p.fiona, submit=False))


def test_comments_and_attachments(org, p):
    flow = make_flow(org, [user_step(1, "First", p.mark)])
    request = _create(p, flow, {"amount": 5, "vendor": "v"})
    services.comment_add(actor=p.alice, request_id=request.pk, body="Which model?")
    services.comment_add(actor=p.mark, request_id=request.pk, body="The small one ✓")
    upload = SimpleUploadedFile("quote.pdf", b"%PDF-1.4 quote", content_type="application/pdf")
    services.attachment_add(actor=p.alice, request_id=request.pk, file=upload)
    answer = _same(selectors.request_get(user=p.admin, request_id=request.pk))
    assert b"Which model?" in answer and b"/download/" in answer
