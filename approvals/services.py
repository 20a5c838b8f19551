"""Decisions, reassignment and delegations.

Every decision is one transaction: lock the request row, re-read the task, check, record,
settle the task by its mode, move the request on, then ``effects.flush()`` (notifications,
then audit rows, last).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.catalog import ORG_ADMIN_ROLE
from accounts.models import User
from approvals import engine, routing
from approvals.models import ApprovalTask, Assignment, Decision, Delegation, TaskStatus
from core.exceptions import ApplicationError, Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from notifications.models import Kind
from requests import selectors as request_selectors
from requests.locks import lock_request
from requests.models import RequestStatus

DECISIONS = {
    "approve": Decision.APPROVED,
    "approved": Decision.APPROVED,
    "reject": Decision.REJECTED,
    "rejected": Decision.REJECTED,
    "request_changes": Decision.CHANGES_REQUESTED,
    "request-changes": Decision.CHANGES_REQUESTED,
    "changes_requested": Decision.CHANGES_REQUESTED,
}
_ACTION = {
    Decision.APPROVED: "task.approved",
    Decision.REJECTED: "task.rejected",
    Decision.CHANGES_REQUESTED: "task.changes_requested",
}


def _as_uuid(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _is_org_admin(user) -> bool:
    return bool(
        user is not None
        and user.is_active
        and user.role_memberships.filter(role__slug=ORG_ADMIN_ROLE, role__organization_id=user.organization_id).exists()
    )


def _task_request_id(*, actor, task_id):
    pk = _as_uuid(task_id)
    qs = ApprovalTask.objects.filter(pk=pk) if pk else ApprovalTask.objects.none()
    if actor is not None:
        qs = qs.filter(organization_id=actor.organization_id)
    request_id = qs.values_list("request_id", flat=True).first()
    if request_id is None:
        raise NotFound("Task not found.")
    return request_id


@contextmanager
def _locked_task(*, actor, task_id) -> Iterator[tuple]:
    """Lock first, then decide: one transaction, the request row locked, the task re-read under it."""
    request_id = _task_request_id(actor=actor, task_id=task_id)
    with transaction.atomic():
        request = lock_request(request_id)
        task = _load_task(task_id)
        task.request = request  # one instance: what the engine changes is what the caller answers with
        yield request, task


def _load_task(task_id) -> ApprovalTask:
    return (
        ApprovalTask.objects.select_related("step", "request")
        .prefetch_related("assignments__assignee", "assignments__on_behalf_of")
        .get(pk=task_id)
    )


def _task_closed(task: ApprovalTask, request) -> InvalidTransition | None:
    if task.status != TaskStatus.PENDING or request.status != RequestStatus.PENDING:
        return InvalidTransition(
            f"This task is closed ({task.status}).", code="task_closed", details={"status": [task.status]}
        )
    return None


def delegation_for(actor, task: ApprovalTask, request) -> tuple[Assignment, Delegation] | tuple[None, None]:
    """An active, undecided assignment of someone who delegates to ``actor`` now (for this workflow)."""
    active = {a.assignee_id: a for a in task.assignments.all() if a.is_active}
    for d in request_selectors.delegators_of(actor):
        if d.from_user_id in active and (d.workflow_id is None or d.workflow_id == request.definition_id):
            return active[d.from_user_id], d
    return None, None


def decide_refusal(request, task: ApprovalTask, deciders: set) -> Forbidden | None:
    """Why ``deciders`` (a user and whoever they act for) may not decide ``task``, or None.

    The one rule every path that lets someone decide shares (own decision, delegate, bulk approve,
    reassign, added approver, SLA action): the requester never decides a step of their own request
    unless the step allows self-approval, and with distinct approvers nobody decides two steps.
    """
    if request.requester_id in deciders and not task.step.allow_self_approval:
        return Forbidden("The requester cannot decide a task of their own request.", code="self_approval")
    return _distinct_refusal(request, task, deciders)


def check_may_decide(request, task: ApprovalTask, deciders: set) -> None:
    refusal = decide_refusal(request, task, deciders)
    if refusal is not None:
        raise refusal


def _check_assignable(request, task: ApprovalTask, user, field: str) -> None:
    """A user given a place on a task must be one who may decide it (400 naming the field)."""
    refusal = decide_refusal(request, task, {user.pk})
    if refusal is not None:
        raise ValidationFailed(details={field: [refusal.message]})


def _distinct_refusal(request, task: ApprovalTask, users: set) -> Forbidden | None:
    if not request.workflow_version.distinct_approvers:
        return None
    standing = engine.standing_tasks(request)
    others = [t for t in standing.values() if t.pk != task.pk and t.step_id != task.step_id]
    if not others:
        return None
    decided = Assignment.objects.filter(task__in=others, decision__in=[Decision.APPROVED, Decision.REJECTED]).filter(
        Q(assignee_id__in=users) | Q(on_behalf_of_id__in=users)
    )
    if decided.exists():
        return Forbidden(
            "This workflow requires distinct approvers: you already decided another step of this request.",
            code="distinct_approvers",
        )
    return None


def task_decide(*, actor, task_id, decision: str, comment: str = "", system: bool = False) -> ApprovalTask:
    """Record ``actor``'s decision on a task (or, with ``system=True``, settle the whole task)."""
    value = DECISIONS.get(str(decision))
    if value is None:
        raise ValidationFailed(details={"decision": ["Must be approve, reject or request_changes."]})
    comment = (comment or "").strip()
    if value != Decision.APPROVED and not comment and not system:
        raise ValidationFailed(details={"comment": ["A comment is required to reject or request changes."]})
    if system:
        actor = None
    effects = engine.Effects(actor=actor)
    with _locked_task(actor=actor, task_id=task_id) as (request, task):
        on_behalf_of = None
        if system:
            closed = _task_closed(task, request)
            if closed:
                raise closed
            status = {Decision.APPROVED: TaskStatus.APPROVED}.get(value, TaskStatus.REJECTED)
            reason = "changes_requested" if value == Decision.CHANGES_REQUESTED else f"system_{value}"
        else:
            assignment = next((a for a in task.assignments.all() if a.is_active and a.assignee_id == actor.pk), None)
            delegation = None
            if assignment is None:
                assignment, delegation = delegation_for(actor, task, request)
            if assignment is None:
                if not request_selectors.can_view(user=actor, request=request):
                    raise NotFound("Task not found.")
                raise Forbidden("You are not an assignee of this task.", code="not_assignee")
            closed = _task_closed(task, request)
            if closed:
                raise closed
            if assignment.decision:
                raise InvalidTransition("You already decided this task.", code="already_decided")
            acting = {actor.pk} | ({assignment.on_behalf_of_id} if assignment.on_behalf_of_id else set())
            if delegation is not None:
                acting.add(delegation.from_user_id)
            check_may_decide(request, task, acting)
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
            assignment.save(update_fields=["decision", "comment", "decided_at", "updated_at"])
            on_behalf_of = assignment.on_behalf_of_id
            if delegation is not None:  # otherwise the prefetched assignment was updated in place
                task = _load_task(task.pk)
                task.request = request
            status, reason = engine.task_outcome(task)

        before = task.status
        if status is not None:
            engine.settle_task(task, status, reason)
        effects.audit(
            _ACTION[value],
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
            },
        )
        if status is not None:
            engine.after_task_settled(request, task, effects, comment=comment)
        effects.flush()
    return task  # as committed: its assignments and request were updated in place


def _user_in_org(user_or_id, organization_id, field: str) -> User:
    if isinstance(user_or_id, User):
        user = user_or_id
    else:
        pk = _as_uuid(user_or_id)
        user = User.objects.filter(pk=pk).first() if pk else None
    if user is None or user.organization_id != organization_id or not user.is_active:
        raise ValidationFailed(details={field: ["Unknown user."]})
    return user


def task_reassign(
    *, actor, task_id, to_user, from_user=None, reason: str = "reassigned", system: bool = False
) -> ApprovalTask:
    """Move one assignee's place on a pending task to another user (the assignee or an org admin)."""
    if system:
        actor = None
    effects = engine.Effects(actor=actor)
    with _locked_task(actor=actor, task_id=task_id) as (request, task):
        active = [a for a in task.assignments.all() if a.is_active]
        is_admin = system or _is_org_admin(actor)
        own = next((a for a in active if actor is not None and a.assignee_id == actor.pk), None)
        if not is_admin and own is None:
            if not request_selectors.can_view(user=actor, request=request):
                raise NotFound("Task not found.")
            raise Forbidden("Only an assignee or an org admin can reassign this task.", code="not_assignee")
        closed = _task_closed(task, request)
        if closed:
            raise closed
        target = _user_in_org(to_user, request.organization_id, "user")
        if from_user is not None:
            from_id = from_user.pk if isinstance(from_user, User) else _as_uuid(from_user)
            source = next((a for a in active if a.assignee_id == from_id), None)
            if source is None or (not is_admin and source is not own):
                raise ValidationFailed(details={"from_user": ["Not an active assignee of this task."]})
        elif own is not None:
            source = own
        else:
            undecided = [a for a in active if not a.decision]
            if len(undecided) != 1:
                raise ValidationFailed(details={"from_user": ["Say whose place to reassign."]})
            source = undecided[0]
        if source.decision:
            raise InvalidTransition("That assignee already decided.", code="already_decided")
        if any(a.assignee_id == target.pk for a in active):
            raise Conflict("That user is already an assignee of this task.", code="already_assigned")
        _check_assignable(request, task, target, "user")
        source.is_active = False
        source.save(update_fields=["is_active", "updated_at"])
        Assignment.objects.create(
            organization_id=task.organization_id, task=task, assignee=target, reason=reason[:32] or "reassigned"
        )
        effects.audit(
            "task.reassigned",
            task,
            {
                "request": str(request.pk),
                "from": str(source.assignee_id),
                "to": str(target.pk),
                "to_email": target.email,
                "reason": reason,
            },
        )
        title = f"{request.reference}: {task.step.name}"
        effects.notify(
            target,
            Kind.TASK_REASSIGNED,
            f"{title} was reassigned to you",
            body=request.title,
            request=request,
            data={"task": str(task.pk)},
        )
        if source.assignee_id != (actor.pk if actor else None):
            effects.notify(
                source.assignee,
                Kind.TASK_REASSIGNED,
                f"{title} was reassigned to {target.email}",
                body=request.title,
                request=request,
                data={"task": str(task.pk)},
            )
        effects.flush()
    return _load_task(task.pk)


def task_add_assignee(*, actor, task_id, user, reason: str = "escalation", system: bool = False) -> Assignment:
    """Add a decider to a pending task (SLA escalation, or an org admin). Idempotent per user."""
    if system:
        actor = None
    effects = engine.Effects(actor=actor)
    with _locked_task(actor=actor, task_id=task_id) as (request, task):
        if not system and not _is_org_admin(actor):
            raise Forbidden("Only an org admin can add an assignee.")
        closed = _task_closed(task, request)
        if closed:
            raise closed
        target = _user_in_org(user, request.organization_id, "user")
        existing = next((a for a in task.assignments.all() if a.is_active and a.assignee_id == target.pk), None)
        if existing is not None:
            return existing
        _check_assignable(request, task, target, "user")
        assignment = engine.add_assignment(
            task, routing.Approver(user=target, reason=reason[:32]), effects, request=request
        )
        effects.flush()
    return assignment


def bulk_approve(*, actor, task_ids: list, comment: str = "") -> list[dict]:
    """Approve each task in its own transaction; one failure does not undo the others."""
    results = []
    for task_id in task_ids:
        try:
            task = task_decide(actor=actor, task_id=task_id, decision="approve", comment=comment)
            results.append({"task": str(task_id), "ok": True, "status": task.status})
        except ApplicationError as exc:
            results.append(
                {
                    "task": str(task_id),
                    "ok": False,
                    "status": None,
                    "error": {"code": exc.code, "message": exc.message, "http_status": exc.status_code},
                }
            )
    return results


# --- delegations ------------------------------------------------------------------------------


def _validate_delegation(*, from_user, to_user, starts_at, ends_at, exclude_id=None) -> None:
    errors: dict[str, list[str]] = {}
    if to_user.pk == from_user.pk:
        errors.setdefault("to_user", []).append("You cannot delegate to yourself.")
    if not to_user.is_active or to_user.organization_id != from_user.organization_id:
        errors.setdefault("to_user", []).append("Unknown user.")
    if starts_at is None or ends_at is None or ends_at <= starts_at:
        errors.setdefault("ends_at", []).append("The end must be after the start.")
    if errors:
        raise ValidationFailed(details=errors)
    reverse = Delegation.objects.filter(
        organization_id=from_user.organization_id,
        from_user=to_user,
        to_user=from_user,
        starts_at__lt=ends_at,
        ends_at__gt=starts_at,
    )
    if exclude_id:
        reverse = reverse.exclude(pk=exclude_id)
    if reverse.exists():
        raise ValidationFailed(
            details={"to_user": [f"{to_user.email} already delegates to you in an overlapping window."]}
        )


def _lock_pair(a, b) -> None:
    # Serialize concurrent A->B / B->A creations: lock both users' rows in a fixed order.
    list(User.objects.select_for_update().filter(pk__in=sorted({a.pk, b.pk}, key=str)).order_by("id"))


def _delegation_changes(d: Delegation) -> dict:
    return {
        "from_user": str(d.from_user_id),
        "to_user": str(d.to_user_id),
        "starts_at": d.starts_at,
        "ends_at": d.ends_at,
        "workflow": str(d.workflow_id) if d.workflow_id else None,
        "reason": d.reason,
    }


def delegation_create(*, actor, to_user, starts_at, ends_at, workflow=None, reason: str = "") -> Delegation:
    to_user = _user_in_org(to_user, actor.organization_id, "to_user") if not isinstance(to_user, User) else to_user
    if workflow is not None and workflow.organization_id != actor.organization_id:
        raise ValidationFailed(details={"workflow": ["Unknown workflow."]})
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        _lock_pair(actor, to_user)
        _validate_delegation(from_user=actor, to_user=to_user, starts_at=starts_at, ends_at=ends_at)
        delegation = Delegation.objects.create(
            organization_id=actor.organization_id,
            from_user=actor,
            to_user=to_user,
            starts_at=starts_at,
            ends_at=ends_at,
            workflow=workflow,
            reason=reason or "",
        )
        effects.notify(
            to_user,
            Kind.DELEGATION_STARTED,
            f"{actor.get_full_name()} delegated their approvals to you",
            body=f"From {starts_at:%Y-%m-%d %H:%M} to {ends_at:%Y-%m-%d %H:%M} UTC"
            + (f" for {workflow.name}" if workflow else ""),
            data={"delegation": str(delegation.pk)},
        )
        effects.audit("delegation.created", delegation, _delegation_changes(delegation))
        effects.flush()
    return delegation


def _own_delegation(actor, delegation_id) -> Delegation:
    pk = _as_uuid(delegation_id)
    delegation = (
        Delegation.objects.select_for_update().filter(pk=pk, organization_id=actor.organization_id).first()
        if pk
        else None
    )
    if delegation is None or delegation.from_user_id != actor.pk:
        raise NotFound("Delegation not found.")
    return delegation


_UNSET = object()


def delegation_update(
    *, actor, delegation_id, to_user=_UNSET, starts_at=_UNSET, ends_at=_UNSET, workflow=_UNSET, reason=_UNSET
) -> Delegation:
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        delegation = _own_delegation(actor, delegation_id)
        before = _delegation_changes(delegation)
        if to_user is not _UNSET:
            delegation.to_user = _user_in_org(to_user, actor.organization_id, "to_user")
        if starts_at is not _UNSET:
            delegation.starts_at = starts_at
        if ends_at is not _UNSET:
            delegation.ends_at = ends_at
        if workflow is not _UNSET:
            if workflow is not None and workflow.organization_id != actor.organization_id:
                raise ValidationFailed(details={"workflow": ["Unknown workflow."]})
            delegation.workflow = workflow
        if reason is not _UNSET:
            delegation.reason = reason or ""
        _lock_pair(actor, delegation.to_user)
        _validate_delegation(
            from_user=actor,
            to_user=delegation.to_user,
            starts_at=delegation.starts_at,
            ends_at=delegation.ends_at,
            exclude_id=delegation.pk,
        )
        delegation.save()
        after = _delegation_changes(delegation)
        changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        if changes:
            effects.audit("delegation.updated", delegation, changes)
        effects.flush()
    return delegation


def delegation_delete(*, actor, delegation_id) -> None:
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        delegation = _own_delegation(actor, delegation_id)
        delegation.deleted_at = timezone.now()
        delegation.save(update_fields=["deleted_at", "updated_at"])
        effects.audit("delegation.deleted", delegation, {"deleted_at": [None, delegation.deleted_at]})
        effects.flush()
