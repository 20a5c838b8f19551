"""The engine's shared steps, run by the ``do_*`` actions with the request row locked.

- ``activate_from`` opens the next stage that has a step to decide (skipping the others,
  approving the request when none remains).
- ``add_assignments`` gives people a place on a task.
- ``task_outcome`` / ``settle_task`` settle a task by its mode.
- ``after_task_settled`` moves the request on (next stage, rejected, changes requested).
- ``close_request`` ends a request (from a state its table allows) and cancels its open tasks.

Nothing here opens a transaction or takes locks: the callers own both. Every write emits its
event into the caller's ``Outbox``.
"""

from __future__ import annotations

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from approvals import routing
from approvals.action_links import action_url
from approvals.lifecycle import events as ev
from approvals.lifecycle.transitions import check_request, check_task
from approvals.models import ApprovalTask, Assignment, Decision, TaskStatus
from approvals.sla import schedule_task_sla
from core.write_batch import WriteBatch
from requests.models import Request, RequestStatus
from workflows.models import ApprovalMode, OnReject


def _uid(user) -> str | None:
    return str(user.pk) if user is not None else None


def data_digest(data) -> str:
    """SHA-256 of a request's data in a canonical form (key order and spacing do not count)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- reads the engine decides on ----------------------------------------------------------------


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


# --- activation ------------------------------------------------------------------------------


def _new_task(request: Request, step, status: str, **fields) -> ApprovalTask:
    """A task of ``step`` in the request's current round (not saved); tasks are born pending or skipped."""
    return ApprovalTask(
        organization_id=request.organization_id,
        request=request,
        step=step,
        stage=step.stage,
        round=request.round,
        status=status,
        activated_at=timezone.now(),
        **fields,
    )


def _create_skipped(request: Request, step, outbox: ev.Outbox, reason: str, *, batch: WriteBatch) -> ApprovalTask:
    task = _new_task(request, step, TaskStatus.SKIPPED, outcome_reason=reason)
    task.completed_at = task.activated_at
    batch.insert([task])
    outbox.emit(
        ev.TaskSkipped(
            task,
            {
                "request": str(request.pk),
                "step": step.name,
                "stage": step.stage,
                "round": request.round,
                "reason": reason,
            },
        )
    )
    return task


def add_assignments(
    task: ApprovalTask,
    approvers: list[routing.Approver],
    outbox: ev.Outbox,
    *,
    request: Request,
    batch: WriteBatch | None = None,
) -> list[Assignment]:
    """Assign ``approvers`` to ``task`` (one insert however many there are), audited and notified.

    With ``batch`` the insert joins the caller's batch of writes (sent by the caller)."""
    assignments = [
        Assignment(
            organization_id=task.organization_id,
            task=task,
            assignee=approver.user,
            on_behalf_of=approver.on_behalf_of,
            reason=approver.reason,
        )
        for approver in approvers
    ]
    if batch is None:
        Assignment.objects.bulk_create(assignments)
    else:
        batch.insert(assignments)
    for approver, assignment in zip(approvers, assignments, strict=True):
        acting = f" (acting for {approver.on_behalf_of.email})" if approver.on_behalf_of else ""
        outbox.emit(
            ev.TaskAssigned(
                task,
                {
                    "request": str(request.pk),
                    "assignee": _uid(approver.user),
                    "assignee_email": approver.user.email,
                    "on_behalf_of": _uid(approver.on_behalf_of),
                    "reason": approver.reason,
                },
                request=request,
                # the e-mail's button: the signed page where this assignee decides (issue 16.1)
                data={"task": str(task.pk), "action_url": action_url(assignment, task)},
            ),
            ev.Notice(approver.user, {"step": task.step.name, "message": request.title + acting}),
        )
    return assignments


def _activate_step(request: Request, plan: routing.StepPlan, outbox: ev.Outbox, *, batch: WriteBatch) -> ApprovalTask:
    step = plan.step
    task = _new_task(request, step, TaskStatus.PENDING)
    task.organization = request.organization
    schedule_task_sla(task=task)
    batch.insert([task])
    if plan.fallback_reason:
        outbox.emit(
            ev.TaskFallbackAdmins(task, {"request": str(request.pk), "step": step.name, "reason": plan.fallback_reason})
        )
    if plan.condition_error:
        outbox.emit(
            ev.TaskConditionError(task, {"request": str(request.pk), "step": step.name, "error": plan.condition_error})
        )
    add_assignments(task, plan.approvers, outbox, request=request, batch=batch)
    return task


def activate_from(
    request: Request,
    *,
    stage: int,
    outbox: ev.Outbox,
    unsaved: tuple[str, ...] = (),
    batch: WriteBatch | None = None,
) -> int | None:
    """Activate the first stage >= ``stage`` with a step that applies; approve the request if none.

    Returns the activated stage (or None when the request was approved). Stages passed over
    and steps whose condition is false get a ``skipped`` task in the current round. ``unsaved``:
    fields of the request the caller changed and left to be saved here, with the request's new
    stage (in the same statement) or before the request is approved. ``batch``: writes of the
    caller not sent yet (a decision and its task's settlement), sent with the stage's rows.
    """
    version = request.workflow_version
    requester = request.requester
    # The stage's tasks, their assignments and the request's new stage go in one statement
    # (issue 14), with the caller's pending writes; nothing read in between depends on them
    # (routing reads people and delegations; standing_deciders reads earlier stages' approved
    # tasks, and the batch is sent before it).
    batch = WriteBatch() if batch is None else batch
    for number, steps in sorted(routing.stages_of(version).items()):
        if number < stage:
            continue
        if version.distinct_approvers:
            batch.execute()
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
                _create_skipped(request, step_plan.step, outbox, step_plan.skip_reason, batch=batch)
        if plan.skipped:
            continue
        for step_plan in plan.steps:
            if step_plan.applies:
                _activate_step(request, step_plan, outbox, batch=batch)
        request.current_stage = number
        batch.update(request, ["current_stage", "updated_at", *unsaved])
        outbox.defer(batch)  # the new stage's rows, sent with the notifications when the outbox allows
        return number
    if unsaved:
        batch.update(request, [*unsaved, "updated_at"])
    outbox.defer(batch)  # closing below reads nothing they write
    # Only one stage has pending tasks at a time, and a request gets here when none of it is
    # pending (after_task_settled) or before it has any (submit, resubmit in a new round).
    close_request(request, "approve", outbox, none_open=True)
    return None


# --- closing ----------------------------------------------------------------------------------


def cancel_open_tasks(request: Request, outbox: ev.Outbox, *, reason: str) -> None:
    now = timezone.now()
    for task in ApprovalTask.objects.filter(request=request, status=TaskStatus.PENDING).select_related("step"):
        task.status = check_task(task, "cancel", request=request)
        task.outcome_reason = reason
        task.completed_at = now
        task.save(update_fields=["status", "outcome_reason", "completed_at", "updated_at"])
        outbox.emit(
            ev.TaskCancelled(
                task,
                {"request": str(request.pk), "status": [TaskStatus.PENDING, TaskStatus.CANCELLED], "reason": reason},
            )
        )


_CLOSED_EVENT = {
    RequestStatus.APPROVED: ev.RequestApproved,
    RequestStatus.REJECTED: ev.RequestRejected,
    RequestStatus.CHANGES_REQUESTED: ev.RequestChangesRequested,
    RequestStatus.WITHDRAWN: ev.RequestWithdrawn,
    RequestStatus.CANCELLED: ev.RequestCancelled,
}


def close_request(
    request: Request,
    action: str,
    outbox: ev.Outbox,
    *,
    comment: str = "",
    returned_from_stage: int | None = None,
    none_open: bool = False,
) -> None:
    """Take ``request`` out of ``pending``/``draft``/``changes_requested`` by ``action``; cancel its open tasks.

    ``none_open``: the caller knows no task of the request is pending (no query for them)."""
    before = request.status
    status = check_request(request, action)
    if not none_open:
        cancel_open_tasks(request, outbox, reason=f"request_{status}")
    request.status = status
    fields = ["status", "updated_at"]
    if status == RequestStatus.CHANGES_REQUESTED:
        request.returned_from_stage = returned_from_stage
        request.returned_data_digest = data_digest(request.data)  # what the earlier stages decided on
        fields += ["returned_from_stage", "returned_data_digest"]
    else:
        request.completed_at = timezone.now()
        fields.append("completed_at")
    batch = WriteBatch()
    batch.update(request, fields)
    outbox.defer(batch)
    changes = {"status": [before, status], "round": request.round}
    if comment:
        changes["comment"] = comment
    if returned_from_stage is not None:
        changes["returned_from_stage"] = returned_from_stage
    outbox.emit(
        _CLOSED_EVENT[status](request, changes, request=request),
        ev.Notice(request.requester, {"message": comment or request.title}),
    )


# --- decisions -----------------------------------------------------------------------------------


def task_outcome(task: ApprovalTask) -> tuple[str | None, str]:
    """(settling action or None while undecided, reason) from the active assignments and the step's mode."""
    assignments = [a for a in task.assignments.all() if a.is_active]
    decisions = [a.decision for a in assignments]
    approvals = decisions.count(Decision.APPROVED)
    rejections = decisions.count(Decision.REJECTED)
    undecided = decisions.count("")
    if Decision.CHANGES_REQUESTED in decisions:
        return "reject", "changes_requested"
    mode = task.step.mode
    if mode == ApprovalMode.ANY:
        if approvals:
            return "approve", "approved"
        if rejections:
            return "reject", "rejected"
        return None, ""
    if mode == ApprovalMode.ALL:
        if rejections:
            return "reject", "rejected"
        if assignments and approvals == len(assignments):
            return "approve", "all_approved"
        return None, ""
    needed = task.step.quorum_count or 1
    if approvals >= needed:
        return "approve", "quorum_reached"
    if approvals + undecided < needed:
        return "reject", "quorum_unreachable"
    return None, ""


def settle_task(
    task: ApprovalTask, action: str, reason: str, *, request: Request, batch: WriteBatch | None = None
) -> None:
    """Settle ``task``; with ``batch`` the update joins the caller's batch of writes (sent by the caller)."""
    task.status = check_task(task, action, request=request)
    task.outcome_reason = reason
    task.completed_at = timezone.now()
    fields = ["status", "outcome_reason", "completed_at", "updated_at"]
    if batch is None:
        task.save(update_fields=fields)
    else:
        batch.update(task, fields)


def after_task_settled(
    request: Request, task: ApprovalTask, outbox: ev.Outbox, *, comment: str = "", batch: WriteBatch | None = None
) -> None:
    """Move the request on once ``task`` has settled (the request row is locked by the caller).

    ``batch``: the caller's writes not sent yet (the task's settlement): sent before the reads of
    the task's stage and request, else with the next stage's rows (``activate_from``)."""
    batch = WriteBatch() if batch is None else batch
    if task.status == TaskStatus.REJECTED:
        batch.execute()  # closing reads the request's open tasks
        if task.outcome_reason == "changes_requested" or task.step.on_reject == OnReject.RETURN_TO_REQUESTER:
            close_request(request, "request_changes", outbox, comment=comment, returned_from_stage=task.stage)
        else:
            close_request(request, "reject", outbox, comment=comment)
        return
    # A stage of one step has one task per round, this one: nothing else can be open in it.
    open_in_stage = False
    if len(routing.stages_of(request.workflow_version).get(task.stage, ())) > 1:
        batch.execute()
        open_in_stage = ApprovalTask.objects.filter(
            request=request, round=request.round, stage=task.stage, status=TaskStatus.PENDING
        ).exists()
    if open_in_stage:
        outbox.defer(batch)
    else:
        activate_from(request, stage=task.stage + 1, outbox=outbox, batch=batch)
