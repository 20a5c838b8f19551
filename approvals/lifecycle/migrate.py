"""Move running requests to another published version of their workflow (issue 16.4).

Steps map by their ``Step.key`` (stable across versions: a new draft copies it, so a renamed step
keeps its key; the validator fills a blank one with the name's slug). Per request, under its lock:

- a completed stage (a task of the current round approved or skipped before the current stage)
  whose steps would change (a step gone, moved to another stage, or a new one there) leaves the
  request alone (``completed_stages_change``) unless ``restart``: then every open task is
  cancelled and the request starts again in a new round on the new version;
- otherwise each pending task whose step still exists keeps its decisions and assignments (it now
  points at the new step); a pending step that disappeared is cancelled; steps the new version
  adds to the current stage are activated by its rules; a kept task is then decided under its new
  step's mode (``any`` where ``all`` was asked may now be met: ``settle``); with nothing left open
  the request moves on;
- a request whose data does not fit the new version's form is left alone (``data_invalid``, the
  form's ``errors``): its tasks would be decided on data the new version would refuse.

A dry run answers the same plan and writes nothing.
"""

from __future__ import annotations

import copy

from approvals import routing
from approvals.lifecycle import engine
from approvals.lifecycle import events as ev
from approvals.lifecycle.transitions import check_request, check_task
from approvals.models import ApprovalTask, Decision, TaskStatus
from core.exceptions import ValidationFailed
from core.write_batch import WriteBatch
from requests.models import Request
from requests.validation import validate_form

_DECIDED_EVENT = {"approve": ev.TaskApproved, "reject": ev.TaskRejected}


def _keys(version) -> dict:
    return {s.key: s for steps in routing.stages_of(version).values() for s in steps}


def plan(request: Request, new_version, *, restart: bool) -> dict:
    """What migrating ``request`` to ``new_version`` would do (reads only)."""
    base = {
        "request": str(request.pk),
        "reference": request.reference,
        "from_version": request.workflow_version.number,
        "to_version": new_version.number,
    }
    try:
        validate_form(new_version.form_schema, request.data)
    except ValidationFailed as exc:
        return {**base, "action": "left_alone", "reason": "data_invalid", "errors": exc.details, "changes": []}
    new = _keys(new_version)
    tasks = list(
        ApprovalTask.objects.filter(request=request, round=request.round)
        .select_related("step")
        .prefetch_related("assignments")
    )
    current = request.current_stage or 0
    done = [t for t in tasks if t.status in (TaskStatus.APPROVED, TaskStatus.SKIPPED) and t.stage < current]
    changes = []
    for task in done:
        key = task.step.key
        if key not in new:
            changes.append(f"{task.step.name}: removed")
        elif new[key].stage != task.stage:
            changes.append(f"{task.step.name}: moved to stage {new[key].stage}")
    done_keys = {t.step.key for t in done}
    for key, step in new.items():
        if step.stage < current and key not in done_keys:
            changes.append(f"{step.name}: added to completed stage {step.stage}")
    if changes and not restart:
        return {**base, "action": "left_alone", "reason": "completed_stages_change", "changes": changes}
    if changes:
        return {**base, "action": "restart", "changes": changes}
    pending = [t for t in tasks if t.status == TaskStatus.PENDING]
    keep = [t.step.key for t in pending if t.step.key in new and new[t.step.key].stage == t.stage]
    cancel = [t.step.key for t in pending if t.step.key not in keep]
    present = {t.step.key for t in tasks}
    activate = [k for k, s in new.items() if s.stage == current and k not in present]
    settle = {}
    for task in pending:
        if task.step.key in keep:
            action, _ = _outcome_under(task, new[task.step.key])
            if action is not None:
                settle[task.step.key] = action
    return {
        **base,
        "action": "migrate",
        "keep": keep,
        "cancel": cancel,
        "activate": activate,
        "settle": settle,
        "changes": [],
    }


def _outcome_under(task: ApprovalTask, step) -> tuple[str | None, str]:
    """How ``task``'s standing decisions settle under ``step``'s mode (a copy: reads only)."""
    moved = copy.copy(task)
    moved.step = step
    return engine.task_outcome(moved)


def do_migrate(request: Request, new_version, *, restart: bool, outbox: ev.Outbox) -> dict:
    """Apply ``plan`` (the request row locked by the caller)."""
    result = plan(request, new_version, restart=restart)
    if result["action"] == "left_alone":
        return result
    check_request(request, "migrate")
    old_version = request.workflow_version
    new = _keys(new_version)
    if result["action"] == "restart":
        engine.cancel_open_tasks(request, outbox, reason="migrated")
        request.round += 1
        request.workflow_version = new_version
        request.save(update_fields=["round", "workflow_version", "updated_at"])
        _emit(request, old_version, result, outbox)
        engine.activate_from(request, stage=0, outbox=outbox)
        return result
    tasks = list(ApprovalTask.objects.filter(request=request, round=request.round).select_related("step"))
    for task in tasks:
        key = task.step.key
        if task.status == TaskStatus.PENDING and key in result["cancel"]:
            task.status = check_task(task, "cancel", request=request)
            task.outcome_reason = "migrated"
            task.save(update_fields=["status", "outcome_reason", "updated_at"])
            outbox.emit(ev.TaskCancelled(task, {"request": str(request.pk), "reason": "migrated"}))
        elif key in new:  # kept (pending or done): the same place on the new version's step
            if task.status == TaskStatus.PENDING:
                check_task(task, "migrate", request=request)
            task.step = new[key]
            task.save(update_fields=["step", "updated_at"])
    request.workflow_version = new_version
    request.save(update_fields=["workflow_version", "updated_at"])
    _emit(request, old_version, result, outbox)
    if result["activate"]:
        steps = [new[k] for k in result["activate"]]
        stage_plan = routing.plan_stage(
            steps,
            organization=request.organization,
            requester=request.requester,
            data=request.data,
            definition_id=request.definition_id,
            distinct=new_version.distinct_approvers,
            excluded_ids=engine.standing_deciders(request, before_stage=request.current_stage or 0)
            if new_version.distinct_approvers
            else set(),
        )
        batch = WriteBatch()
        for step_plan in stage_plan.steps:
            if step_plan.applies:
                engine._activate_step(request, step_plan, outbox, batch=batch)
        batch.execute()
    stage = request.current_stage
    for task in (
        ApprovalTask.objects.filter(
            request=request, round=request.round, status=TaskStatus.PENDING, step__key__in=list(result["settle"])
        )
        .select_related("step")
        .prefetch_related("assignments")
    ):
        if not _settle_kept(request, task, outbox) or request.status != "pending" or request.current_stage != stage:
            return result  # settling moved the request on (rejected, or to the next stage)
    if not ApprovalTask.objects.filter(request=request, round=request.round, status=TaskStatus.PENDING).exists():
        engine.activate_from(request, stage=(request.current_stage or 0) + 1, outbox=outbox)
    return result


def _settle_kept(request: Request, task: ApprovalTask, outbox: ev.Outbox) -> bool:
    """Decide a kept task under its new step's mode; True when it settled."""
    action, reason = engine.task_outcome(task)
    if action is None:
        return False
    before = task.status
    engine.settle_task(task, action, f"migrated_{reason}", request=request)
    outbox.emit(
        _DECIDED_EVENT[action](
            task,
            {
                "request": str(request.pk),
                "step": task.step.name,
                "decision": Decision.APPROVED if action == "approve" else Decision.REJECTED,
                "comment": "",
                "on_behalf_of": None,
                "system": True,
                "status": [before, task.status],
                "outcome": task.outcome_reason,
            },
        )
    )
    engine.after_task_settled(request, task, outbox)
    return True


def _emit(request: Request, old_version, result: dict, outbox: ev.Outbox) -> None:
    outbox.emit(
        ev.RequestMigrated(
            request,
            {
                "from_version": old_version.number,
                "to_version": request.workflow_version.number,
                "restarted": result["action"] == "restart",
                **{k: result[k] for k in ("keep", "cancel", "activate", "settle", "changes") if k in result},
            },
            request=request,
        )
    )
