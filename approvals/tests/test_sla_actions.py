"""Each on_breach action, carried out through the engine's own services."""

import datetime as dt

import pytest

from approvals.models import ApprovalTask, Assignment, EscalationRecord, TaskStatus
from approvals.sla_scan import run_scan
from approvals.tests.test_sla_support import make_sla_task
from auditlogs.models import AuditLog
from requests.models import Request

MON = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2026, 1, 12, 18, 0, tzinfo=dt.UTC)


def make(org, people, **kwargs):
    return make_sla_task(org, assignees=[people["approver"]], requester=people["requester"], activated_at=MON, **kwargs)


def active(task):
    return set(Assignment.objects.filter(task=task, is_active=True).values_list("assignee__email", flat=True))


def test_reassign_to_manager(org, people):
    task = make(org, people, on_breach="reassign")
    report = run_scan(now=LATE)
    assert report.escalations[0].action == "reassign" and not report.errors
    assert active(task) == {"boss@acme-test.test"}
    moved = Assignment.objects.get(task=task, assignee=people["boss"], is_active=True)
    assert moved.reason == "escalation"
    assert EscalationRecord.objects.get(task=task, level=1).action == "reassign"
    assert AuditLog.objects.filter(action="task.escalated", target_id=str(task.pk)).count() == 1
    run_scan(now=LATE)
    assert active(task) == {"boss@acme-test.test"}


def test_add_approver(org, people):
    task = make(org, people, on_breach="add_approver")
    run_scan(now=LATE)
    assert active(task) == {"approver@acme-test.test", "boss@acme-test.test"}
    run_scan(now=LATE)
    assert Assignment.objects.filter(task=task).count() == 2


@pytest.mark.parametrize(
    ("action", "task_status", "request_status"),
    [("auto_approve", TaskStatus.APPROVED, "approved"), ("auto_reject", TaskStatus.REJECTED, "rejected")],
)
def test_auto_decisions_go_through_the_engine(org, people, action, task_status, request_status):
    task = make(org, people, on_breach=action, escalation_repeat_hours=1, max_escalations=3)
    report = run_scan(now=LATE)
    assert not report.errors, report.errors
    task.refresh_from_db()
    assert task.status == task_status and task.escalation_level == 1
    assert Request.objects.get(pk=task.request_id).status == request_status
    # the engine audited the decision as the system; the scan audited the escalation
    assert AuditLog.objects.filter(action="task.escalated", target_id=str(task.pk)).count() == 1
    assert AuditLog.objects.filter(actor__isnull=True).exclude(action__startswith="task.escalated").exists()
    # a closed task is never escalated again
    assert run_scan(now=LATE + dt.timedelta(days=3)).escalations == []
    assert EscalationRecord.objects.filter(task=task).count() == 1


def test_nothing_to_move_is_still_one_escalation(org, people):
    # the target already is the assignee: nothing to reassign, the escalation is recorded once
    task = make(org, people, on_breach="reassign", escalate_to="user", escalate_to_ref=people["approver"].email)
    run_scan(now=LATE)
    assert active(task) == {"approver@acme-test.test"}
    assert EscalationRecord.objects.filter(task=task, level=1).count() == 1
    assert ApprovalTask.objects.get(pk=task.pk).escalation_level == 1


def test_action_the_engine_refuses_is_recorded_and_not_retried(org, people):
    # reassigning to the requester is refused by the engine (no self-approval): the escalation is
    # still recorded, notified and audited once, with the refusal noted; the task stays with its assignee
    task = make(org, people, on_breach="reassign", escalate_to="user", escalate_to_ref=people["requester"].email)
    report = run_scan(now=LATE)
    assert not report.errors
    rec = EscalationRecord.objects.get(task=task, level=1)
    assert "not applied" in rec.details["outcome"], rec.details
    assert active(task) == {"approver@acme-test.test"}
    assert run_scan(now=LATE).escalations == []
    assert AuditLog.objects.filter(action="task.escalated", target_id=str(task.pk)).count() == 1
