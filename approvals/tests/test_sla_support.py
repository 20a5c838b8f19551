"""Factories for the SLA tests (no tests here): a request with one task, built directly from the models."""

import datetime as dt
import itertools

from approvals.models import ApprovalTask, Assignment, TaskStatus
from approvals.sla import schedule_task_sla
from requests.models import Request, RequestStatus
from workflows.models import Step, VersionStatus, WorkflowDefinition, WorkflowVersion

_seq = itertools.count(1)


def make_sla_task(
    org,
    *,
    assignees,
    requester,
    activated_at: dt.datetime,
    sla_hours=8,
    reminder_at_percent=None,
    escalate_to="manager",
    escalate_to_ref="",
    on_breach="notify",
    escalation_repeat_hours=None,
    max_escalations=1,
    step=None,
) -> ApprovalTask:
    """A pending task on a new one-step workflow, or on ``step`` (then the step's own SLA settings apply)."""
    n = next(_seq)
    if step is None:
        definition = WorkflowDefinition.objects.create(organization=org, key=f"sla-wf-{n}", name=f"SLA workflow {n}")
        version = WorkflowVersion.objects.create(organization=org, definition=definition, number=1)
        step = Step.objects.create(
            version=version,
            stage=1,
            name="Manager approval",
            approver_type="user",
            approver_ref=assignees[0].email,
            sla_hours=sla_hours,
            reminder_at_percent=reminder_at_percent,
            escalate_to=escalate_to,
            escalate_to_ref=escalate_to_ref,
            on_breach=on_breach,
            escalation_repeat_hours=escalation_repeat_hours,
            max_escalations=max_escalations,
        )
        # published after its steps exist (the database keeps published versions immutable)
        WorkflowVersion.objects.filter(pk=version.pk).update(status=VersionStatus.PUBLISHED, published_at=activated_at)
    version, definition = step.version, step.version.definition
    req = Request.objects.create(
        organization=org,
        workflow_version=version,
        definition=definition,
        requester=requester,
        title=f"Laptop {n}",
        status=RequestStatus.PENDING,
        current_stage=1,
        reference=f"SLA-{n:06d}",
        submitted_at=activated_at,
    )
    task = ApprovalTask(
        organization=org, request=req, step=step, stage=1, status=TaskStatus.PENDING, activated_at=activated_at
    )
    schedule_task_sla(task=task)
    task.save()
    for user in assignees:
        Assignment.objects.create(organization=org, task=task, assignee=user)
    return task
