"""``do_*``: the writes of each transition, run under the locks (``approvals.lifecycle.locks``)
after the ``check_*`` functions passed. No access checks here: the caller decided who may; every
state change is still checked against the transition tables, and every write emits its events
into the caller's ``Outbox``.

The public services (``approvals.lifecycle.services``) and the system paths (the SLA scan's
actions) call these; nothing else writes ``Request.status``, ``ApprovalTask.status`` or an
assignment's decision.
"""

from __future__ import annotations

from django.utils import timezone

from approvals import routing
from approvals.lifecycle import engine
from approvals.lifecycle import events as ev
from approvals.lifecycle.locks import load_task
from approvals.lifecycle.resubmit import restart_point
from approvals.lifecycle.transitions import check_request, check_task
from approvals.models import ApprovalTask, Assignment, Decision, Delegation
from core.write_batch import WriteBatch
from requests.models import Request, RequestStatus

_DECIDED_EVENT = {
    Decision.APPROVED: ev.TaskApproved,
    Decision.REJECTED: ev.TaskRejected,
    Decision.CHANGES_REQUESTED: ev.TaskChangesRequested,
}


# --- requests --------------------------------------------------------------------------------


def do_submit(request: Request, *, outbox: ev.Outbox) -> None:
    """draft -> pending, then activate the first stage that applies."""
    before = request.status
    request.status = check_request(request, "submit")
    request.submitted_at = timezone.now()
    request.department_id = request.requester.department_id
    outbox.emit(
        ev.RequestSubmitted(request, {"status": [before, request.status], "round": request.round}, request=request),
        ev.Notice(request.requester),
    )
    # saved with the first stage's writes: one UPDATE of the request row less (issue 14)
    engine.activate_from(request, stage=0, outbox=outbox, unsaved=("status", "submitted_at", "department"))


def do_resubmit(request: Request, *, title: str | None, data: dict | None, outbox: ev.Outbox) -> None:
    """changes_requested -> pending in a new round, starting where the workflow's resubmit policy says
    (the audit row, and so the timeline, says which policy, whether it restarted and why)."""
    status = check_request(request, "resubmit")
    changes: dict = {}
    if title is not None and title.strip() and title.strip() != request.title:
        changes["title"] = [request.title, title.strip()]
        request.title = title.strip()[:300]
    if data is not None and data != request.data:
        changes["data"] = [request.data, data]
        request.data = data
    start = restart_point(request)
    before_round = request.round
    request.round = before_round + 1
    request.status = status
    request.returned_from_stage = None
    request.returned_data_digest = ""
    request.submitted_at = timezone.now()
    request.save()
    changes.update(
        {
            "status": [RequestStatus.CHANGES_REQUESTED, status],
            "round": [before_round, request.round],
            "restarted": start.restarted,
            "resume_stage": start.stage or None,
            "resubmit_policy": start.policy,
            "reason": start.reason,
        }
    )
    outbox.emit(ev.RequestResubmitted(request, changes))
    engine.activate_from(request, stage=start.stage, outbox=outbox)


def do_close(request: Request, action: str, *, outbox: ev.Outbox, comment: str = "") -> None:
    """withdraw / cancel: end the request, cancel its open tasks."""
    engine.close_request(request, action, outbox, comment=comment)


# --- tasks -----------------------------------------------------------------------------------


def _record_decision(
    request: Request,
    task: ApprovalTask,
    *,
    value: str,
    comment: str,
    outbox: ev.Outbox,
    settle: tuple[str | None, str],
    on_behalf_of=None,
    system: bool = False,
    batch: WriteBatch | None = None,
    via: str | None = None,
) -> None:
    """Settle the task when ``settle`` says so, audit the decision, move the request on.

    ``batch``: writes of the caller not sent yet; the task's update joins them. The engine sends
    them before any read that could see them, else with the next stage's rows (issue 14: the
    decision's own round trip less when nothing in between reads it)."""
    action, reason = settle
    before = task.status
    batch = WriteBatch() if batch is None else batch
    if action is not None:
        engine.settle_task(task, action, reason, request=request, batch=batch)
    outbox.emit(
        _DECIDED_EVENT[value](
            task,
            {
                "request": str(request.pk),
                "step": task.step.name,
                "decision": value,
                "comment": comment,
                "on_behalf_of": str(on_behalf_of) if on_behalf_of else None,
                "system": system,
                "status": [before, task.status],
                "outcome": task.outcome_reason,
                **({"via": via} if via else {}),
            },
        )
    )
    if action is not None:
        engine.after_task_settled(request, task, outbox, comment=comment, batch=batch)
    else:
        outbox.defer(batch)


def do_decide(
    request: Request,
    task: ApprovalTask,
    *,
    actor,
    assignment: Assignment,
    delegation: Delegation | None,
    value: str,
    comment: str,
    outbox: ev.Outbox,
    via: str | None = None,
) -> ApprovalTask:
    """Record ``actor``'s decision on their ``assignment`` (or, through ``delegation``, in the delegator's
    place); the task settles when its mode says so. Returns the task as changed."""
    check_task(task, "decide", request=request)
    if delegation is not None:
        # The delegate decides in the delegator's place: recorded as acting for them.
        assignment.is_active = False
        assignment.save(update_fields=["is_active", "updated_at"])
        assignment = Assignment.objects.create(
            organization_id=task.organization_id,
            task=task,
            assignee=actor,
            on_behalf_of_id=delegation.from_user_id,
            reason="delegation",
        )
    assignment.decision = value
    assignment.comment = comment
    assignment.decided_at = timezone.now()
    # the decision and the task's settlement in one statement (issue 14): nothing reads in between
    batch = WriteBatch()
    batch.update(assignment, ["decision", "comment", "decided_at", "updated_at"])
    if delegation is not None:  # otherwise the prefetched assignment was updated in place
        batch.execute()
        task = load_task(task.pk, organization_id=task.organization_id)
        task.request = request
    _record_decision(
        request,
        task,
        value=value,
        comment=comment,
        outbox=outbox,
        settle=engine.task_outcome(task),
        on_behalf_of=assignment.on_behalf_of_id,
        batch=batch,
        via=via,
    )
    return task


def do_settle(request: Request, task: ApprovalTask, *, value: str, comment: str, outbox: ev.Outbox) -> None:
    """Settle the whole task by the system (SLA ``auto_approve``/``auto_reject``), no assignee deciding."""
    action = "approve" if value == Decision.APPROVED else "reject"
    reason = "changes_requested" if value == Decision.CHANGES_REQUESTED else f"system_{value}"
    _record_decision(request, task, value=value, comment=comment, outbox=outbox, settle=(action, reason), system=True)


def do_reassign(
    request: Request,
    task: ApprovalTask,
    *,
    source: Assignment,
    target,
    reason: str,
    outbox: ev.Outbox,
    actor_id=None,
) -> None:
    """Move ``source``'s place on the task to ``target``; both are told (not the actor moving their own)."""
    check_task(task, "reassign", request=request)
    source.is_active = False
    source.save(update_fields=["is_active", "updated_at"])
    Assignment.objects.create(
        organization_id=task.organization_id, task=task, assignee=target, reason=reason[:32] or "reassigned"
    )
    step = task.step.name
    notices = [ev.Notice(target, {"step": step, "to": "to you"})]
    if source.assignee_id != actor_id:
        notices.append(ev.Notice(source.assignee, {"step": step, "to": f"to {target.email}"}))
    outbox.emit(
        ev.TaskReassigned(
            task,
            {
                "request": str(request.pk),
                "from": str(source.assignee_id),
                "to": str(target.pk),
                "to_email": target.email,
                "reason": reason,
            },
            request=request,
            data={"task": str(task.pk)},
        ),
        *notices,
    )


def do_add_assignee(
    request: Request, task: ApprovalTask, *, target, reason: str, outbox: ev.Outbox, comment: str = ""
) -> Assignment:
    """Give ``target`` a place on the task (SLA escalation, an assignee, a workflow admin); the step's
    mode counts them from now on (an ``all`` step also needs them, a quorum counts them)."""
    check_task(task, "add_assignee", request=request)
    assignment = engine.add_assignments(
        task, [routing.Approver(user=target, reason=reason[:32])], outbox, request=request
    )[0]
    if comment:
        outbox.emit(
            ev.TaskAssigneeAdded(
                task,
                {
                    "request": str(request.pk),
                    "assignee": str(target.pk),
                    "assignee_email": target.email,
                    "comment": comment,
                },
            )
        )
    return assignment


def do_retract(
    request: Request, task: ApprovalTask, *, actor, assignment: Assignment, comment: str, outbox: ev.Outbox
) -> ApprovalTask:
    """Take ``assignment``'s decision back on a task that has not settled: it is undecided again.

    A delegate's decision took the delegator's place (``do_decide``); retracting it gives the place
    back to the delegator, as before the delegate acted.
    """
    check_task(task, "retract", request=request)
    before = assignment.decision
    original = None
    delegator_active = any(a.is_active and a.assignee_id == assignment.on_behalf_of_id for a in task.assignments.all())
    if assignment.reason == "delegation" and assignment.on_behalf_of_id and not delegator_active:
        original = (
            Assignment.objects.filter(task=task, assignee_id=assignment.on_behalf_of_id, is_active=False, decision="")
            .order_by("-created_at")
            .first()
        )
    if original is not None:
        assignment.is_active = False
        assignment.save(update_fields=["is_active", "updated_at"])
        original.is_active = True
        original.save(update_fields=["is_active", "updated_at"])
    else:
        assignment.decision = ""
        assignment.comment = ""
        assignment.decided_at = None
        assignment.save(update_fields=["decision", "comment", "decided_at", "updated_at"])
    outbox.emit(
        ev.TaskRetracted(
            task,
            {
                "request": str(request.pk),
                "step": task.step.name,
                "decision": [before, ""],
                "comment": comment,
                "on_behalf_of": str(assignment.on_behalf_of_id) if assignment.on_behalf_of_id else None,
            },
            request=request,
            data={"task": str(task.pk)},
        ),
        ev.Notice(request.requester, {"who": actor.email}),
    )
    task = load_task(task.pk, organization_id=task.organization_id)
    task.request = request
    return task
