"""The approval engine's shared steps, called by the transition services with the request row locked.

- ``Effects`` collects a transition's audit rows and notifications; the service calls
  ``effects.flush()`` once, last in its transaction (audit_record takes the org's chain lock).
- ``activate_from`` opens the next stage that has a step to decide (skipping the others,
  approving the request when none remains).
- ``apply_decision`` records one decision and settles the task by its mode.
- ``after_task_settled`` moves the request on (next stage, rejected, changes requested).
- ``close_request`` ends a request and cancels its open tasks.

Nothing here opens a transaction or takes locks: the callers own both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from approvals import routing, sla
from approvals.models import ApprovalTask, Assignment, Decision, TaskStatus
from auditlogs.services import audit_records
from notifications.models import Kind
from notifications.services import notify_many
from requests.models import Request, RequestStatus
from workflows.models import ApprovalMode, OnReject

# --- effects -------------------------------------------------------------------------------


@dataclass
class Effects:
    """Audit rows and notifications of one transition, written together at the end of its transaction."""

    actor: object = None
    audits: list[dict] = field(default_factory=list)
    notifications: list[dict] = field(default_factory=list)

    def audit(self, action: str, target, changes: dict | None = None, *, actor=...):
        self.audits.append(
            {
                "action": action,
                "actor": self.actor if actor is ... else actor,
                "organization": target.organization_id,
                "target": target,
                "changes": changes or {},
            }
        )

    def notify(self, recipient, kind: str, title: str, *, body: str = "", request=None, data=None):
        if recipient is None:
            return
        self.notifications.append(
            {"recipient": recipient, "kind": kind, "title": title, "body": body, "request": request, "data": data}
        )

    def flush(self) -> None:
        notify_many(self.notifications)
        audit_records(self.audits)  # last: the chain lock is held until commit
        self.audits, self.notifications = [], []


def _uid(user) -> str | None:
    return str(user.pk) if user is not None else None


# --- activation ------------------------------------------------------------------------------


def standing_tasks(request: Request) -> dict:
    """step id -> its most recent task (any round)."""
    latest: dict = {}
    for task in ApprovalTask.objects.filter(request=request).order_by("round", "created_at"):
        latest[task.step_id] = task
    return latest


def standing_deciders(request: Request, *, before_stage: int) -> set:
    """Users whose approvals stand on earlier stages (separation of duties)."""
    tasks = [t for t in standing_tasks(request).values() if t.stage < before_stage and t.status == TaskStatus.APPROVED]
    if not tasks:
        return set()
    ids = set()
    for a in Assignment.objects.filter(task__in=tasks, decision=Decision.APPROVED):
        ids.add(a.assignee_id)
        if a.on_behalf_of_id:
            ids.add(a.on_behalf_of_id)
    return ids


def _create_skipped(request: Request, step, effects: Effects, reason: str) -> ApprovalTask:
    now = timezone.now()
    task = ApprovalTask.objects.create(
        organization_id=request.organization_id,
        request=request,
        step=step,
        stage=step.stage,
        round=request.round,
        status=TaskStatus.SKIPPED,
        outcome_reason=reason,
        activated_at=now,
        completed_at=now,
    )
    effects.audit(
        "task.skipped",
        task,
        {"request": str(request.pk), "step": step.name, "stage": step.stage, "round": request.round, "reason": reason},
    )
    return task


def add_assignment(task: ApprovalTask, approver: routing.Approver, effects: Effects, *, request: Request) -> Assignment:
    return add_assignments(task, [approver], effects, request=request)[0]


def add_assignments(
    task: ApprovalTask, approvers: list[routing.Approver], effects: Effects, *, request: Request
) -> list[Assignment]:
    """Assign ``approvers`` to ``task`` (one insert however many there are), audited and notified."""
    assignments = Assignment.objects.bulk_create(
        [
            Assignment(
                organization_id=task.organization_id,
                task=task,
                assignee=approver.user,
                on_behalf_of=approver.on_behalf_of,
                reason=approver.reason,
            )
            for approver in approvers
        ]
    )
    for approver in approvers:
        effects.audit(
            "task.assigned",
            task,
            {
                "request": str(request.pk),
                "assignee": _uid(approver.user),
                "assignee_email": approver.user.email,
                "on_behalf_of": _uid(approver.on_behalf_of),
                "reason": approver.reason,
            },
        )
        effects.notify(
            approver.user,
            Kind.TASK_ASSIGNED,
            f"{request.reference}: {task.step.name} needs your decision",
            body=request.title + (f" (acting for {approver.on_behalf_of.email})" if approver.on_behalf_of else ""),
            request=request,
            data={"task": str(task.pk)},
        )
    return assignments


def _activate_step(request: Request, plan: routing.StepPlan, effects: Effects) -> ApprovalTask:
    step = plan.step
    task = ApprovalTask(
        organization_id=request.organization_id,
        request=request,
        step=step,
        stage=step.stage,
        round=request.round,
        status=TaskStatus.PENDING,
        activated_at=timezone.now(),
    )
    task.organization = request.organization
    sla.schedule_task_sla(task=task)
    task.save(force_insert=True)
    if plan.fallback_reason:
        effects.audit(
            "task.fallback_admins",
            task,
            {"request": str(request.pk), "step": step.name, "reason": plan.fallback_reason},
        )
    if plan.condition_error:
        effects.audit(
            "task.condition_error", task, {"request": str(request.pk), "step": step.name, "error": plan.condition_error}
        )
    add_assignments(task, plan.approvers, effects, request=request)
    return task


def activate_from(request: Request, *, stage: int, effects: Effects) -> int | None:
    """Activate the first stage >= ``stage`` with a step that applies; approve the request if none.

    Returns the activated stage (or None when the request was approved). Stages passed over
    and steps whose condition is false get a ``skipped`` task in the current round.
    """
    version = request.workflow_version
    requester = request.requester
    for number, steps in sorted(routing.stages_of(version).items()):
        if number < stage:
            continue
        excluded = standing_deciders(request, before_stage=number) if version.distinct_approvers else set()
        plan = routing.plan_stage(
            steps,
            organization=request.organization,
            requester=requester,
            data=request.data,
            definition_id=request.definition_id,
            distinct=version.distinct_approvers,
            excluded_ids=excluded,
        )
        for step_plan in plan.steps:
            if not step_plan.applies:
                _create_skipped(request, step_plan.step, effects, step_plan.skip_reason)
        if plan.skipped:
            continue
        for step_plan in plan.steps:
            if step_plan.applies:
                _activate_step(request, step_plan, effects)
        request.current_stage = number
        request.save(update_fields=["current_stage", "updated_at"])
        return number
    close_request(request, RequestStatus.APPROVED, effects)
    return None


# --- closing ----------------------------------------------------------------------------------


def cancel_open_tasks(request: Request, effects: Effects, *, reason: str) -> None:
    now = timezone.now()
    for task in ApprovalTask.objects.filter(request=request, status=TaskStatus.PENDING).select_related("step"):
        task.status = TaskStatus.CANCELLED
        task.outcome_reason = reason
        task.completed_at = now
        task.save(update_fields=["status", "outcome_reason", "completed_at", "updated_at"])
        effects.audit(
            "task.cancelled",
            task,
            {"request": str(request.pk), "status": [TaskStatus.PENDING, TaskStatus.CANCELLED], "reason": reason},
        )


_CLOSE = {
    RequestStatus.APPROVED: ("request.approved", Kind.REQUEST_APPROVED, "approved"),
    RequestStatus.REJECTED: ("request.rejected", Kind.REQUEST_REJECTED, "rejected"),
    RequestStatus.CHANGES_REQUESTED: ("request.changes_requested", Kind.CHANGES_REQUESTED, "returned for changes"),
    RequestStatus.WITHDRAWN: ("request.withdrawn", None, "withdrawn"),
    RequestStatus.CANCELLED: ("request.cancelled", None, "cancelled"),
}


def close_request(
    request: Request, status: str, effects: Effects, *, comment: str = "", returned_from_stage: int | None = None
) -> None:
    """Move a request out of ``pending``/``draft``/``changes_requested``; cancel its open tasks."""
    before = request.status
    action, kind, verb = _CLOSE[status]
    cancel_open_tasks(request, effects, reason=f"request_{status}")
    request.status = status
    fields = ["status", "updated_at"]
    if status == RequestStatus.CHANGES_REQUESTED:
        request.returned_from_stage = returned_from_stage
        fields.append("returned_from_stage")
    else:
        request.completed_at = timezone.now()
        fields.append("completed_at")
    request.save(update_fields=fields)
    changes = {"status": [before, status], "round": request.round}
    if comment:
        changes["comment"] = comment
    if returned_from_stage is not None:
        changes["returned_from_stage"] = returned_from_stage
    effects.audit(action, request, changes)
    if kind is not None:
        effects.notify(
            request.requester,
            kind,
            f"{request.reference} was {verb}",
            body=comment or request.title,
            request=request,
        )


# --- decisions -----------------------------------------------------------------------------------


def task_outcome(task: ApprovalTask) -> tuple[str | None, str]:
    """(new task status or None while undecided, reason) from the active assignments and the step's mode."""
    assignments = [a for a in task.assignments.all() if a.is_active]
    decisions = [a.decision for a in assignments]
    approvals = decisions.count(Decision.APPROVED)
    rejections = decisions.count(Decision.REJECTED)
    undecided = decisions.count("")
    if Decision.CHANGES_REQUESTED in decisions:
        return TaskStatus.REJECTED, "changes_requested"
    mode = task.step.mode
    if mode == ApprovalMode.ANY:
        if approvals:
            return TaskStatus.APPROVED, "approved"
        if rejections:
            return TaskStatus.REJECTED, "rejected"
        return None, ""
    if mode == ApprovalMode.ALL:
        if rejections:
            return TaskStatus.REJECTED, "rejected"
        if assignments and approvals == len(assignments):
            return TaskStatus.APPROVED, "all_approved"
        return None, ""
    needed = task.step.quorum_count or 1
    if approvals >= needed:
        return TaskStatus.APPROVED, "quorum_reached"
    if approvals + undecided < needed:
        return TaskStatus.REJECTED, "quorum_unreachable"
    return None, ""


def settle_task(task: ApprovalTask, status: str, reason: str) -> None:
    task.status = status
    task.outcome_reason = reason
    task.completed_at = timezone.now()
    task.save(update_fields=["status", "outcome_reason", "completed_at", "updated_at"])


def after_task_settled(request: Request, task: ApprovalTask, effects: Effects, *, comment: str = "") -> None:
    """Move the request on once ``task`` has settled (the request row is locked by the caller)."""
    if task.status == TaskStatus.REJECTED:
        if task.outcome_reason == "changes_requested" or task.step.on_reject == OnReject.RETURN_TO_REQUESTER:
            close_request(
                request, RequestStatus.CHANGES_REQUESTED, effects, comment=comment, returned_from_stage=task.stage
            )
        else:
            close_request(request, RequestStatus.REJECTED, effects, comment=comment)
        return
    open_in_stage = ApprovalTask.objects.filter(
        request=request, round=request.round, stage=task.stage, status=TaskStatus.PENDING
    ).exists()
    if not open_in_stage:
        activate_from(request, stage=task.stage + 1, effects=effects)
