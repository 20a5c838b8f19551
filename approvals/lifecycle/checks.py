"""``check_*``: may this happen? Access, input, delegation and separation of duties.

Checks raise (404/403/400/409 in the error envelope) and write nothing. They run under the
locks the transition holds, before any ``do_*`` action writes.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q

from accounts.catalog import ORG_ADMIN_ROLE, TASKS_MANAGE, WORKFLOWS_MANAGE
from accounts.models import User
from approvals.lifecycle.engine import standing_tasks
from approvals.models import ApprovalTask, Assignment, Decision, Delegation, TaskStatus
from approvals.selectors import can_view, delegators_of
from core.exceptions import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from core.ids import parse_uuid
from requests.models import Request, RequestStatus

DECISIONS = {
    "approve": Decision.APPROVED,
    "approved": Decision.APPROVED,
    "reject": Decision.REJECTED,
    "rejected": Decision.REJECTED,
    "request_changes": Decision.CHANGES_REQUESTED,
    "request-changes": Decision.CHANGES_REQUESTED,
    "changes_requested": Decision.CHANGES_REQUESTED,
}


def check_decision(decision: str, comment: str, *, comment_required: bool = True) -> tuple[str, str]:
    """(decision value, stripped comment) or 400."""
    value = DECISIONS.get(str(decision))
    if value is None:
        raise ValidationFailed(details={"decision": ["Must be approve, reject or request_changes."]})
    comment = (comment or "").strip()
    if comment_required and value != Decision.APPROVED and not comment:
        raise ValidationFailed(details={"comment": ["A comment is required to reject or request changes."]})
    return value, comment


def check_visible(actor, request: Request, what: str = "Request") -> None:
    """404 unless ``actor`` may see ``request`` (as if it did not exist)."""
    if not can_view(user=actor, request=request):
        raise NotFound(f"{what} not found.")


def check_requester(actor, request: Request, action: str) -> None:
    if actor is None or request.requester_id != actor.pk:
        raise Forbidden(f"Only the requester can {action} this request.")


def is_org_admin(user) -> bool:
    return bool(
        user is not None
        and user.is_active
        and user.role_memberships.filter(role__slug=ORG_ADMIN_ROLE, role__organization_id=user.organization_id).exists()
    )


def check_user_in_org(user_or_id, organization_id, field: str) -> User:
    """The active user of the organization named by ``user_or_id`` (a User or an id), or 400 on ``field``."""
    if isinstance(user_or_id, User):
        user = user_or_id
    else:
        try:
            user = User.objects.filter(pk=user_or_id, organization_id=organization_id).first()
        except (DjangoValidationError, ValueError, TypeError):  # a malformed id names nobody
            user = None
    if user is None or user.organization_id != organization_id or not user.is_active:
        raise ValidationFailed(details={field: ["Unknown user."]})
    return user


def delegation_for(actor, task: ApprovalTask, request: Request) -> tuple[Assignment, Delegation] | tuple[None, None]:
    """An active, undecided assignment of someone who delegates to ``actor`` now (for this workflow)."""
    active = {a.assignee_id: a for a in task.assignments.all() if a.is_active}
    for d in delegators_of(actor):
        if d.from_user_id in active and (d.workflow_id is None or d.workflow_id == request.definition_id):
            return active[d.from_user_id], d
    return None, None


def decide_refusal(request: Request, task: ApprovalTask, deciders: set) -> Forbidden | None:
    """Why ``deciders`` (a user and whoever they act for) may not decide ``task``, or None.

    The one rule every path that lets someone decide shares (own decision, delegate, bulk approve,
    reassign, added approver, SLA action): the requester never decides a step of their own request
    unless the step allows self-approval, and with distinct approvers nobody decides two steps.
    """
    if request.requester_id in deciders and not task.step.allow_self_approval:
        return Forbidden("The requester cannot decide a task of their own request.", code="self_approval")
    return _distinct_refusal(request, task, deciders)


def _distinct_refusal(request: Request, task: ApprovalTask, users: set) -> Forbidden | None:
    if not request.workflow_version.distinct_approvers:
        return None
    others = [t for t in standing_tasks(request).values() if t.pk != task.pk and t.step_id != task.step_id]
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


def check_may_decide(request: Request, task: ApprovalTask, deciders: set) -> None:
    refusal = decide_refusal(request, task, deciders)
    if refusal is not None:
        raise refusal


def check_assignable(request: Request, task: ApprovalTask, user, field: str) -> None:
    """A user given a place on a task must be one who may decide it (400 naming the field)."""
    refusal = decide_refusal(request, task, {user.pk})
    if refusal is not None:
        raise ValidationFailed(details={field: [refusal.message]})


def check_undecided(assignment: Assignment, message: str) -> None:
    if assignment.decision:
        raise InvalidTransition(message, code="already_decided")


def reassign_source(task: ApprovalTask, *, own: Assignment | None, from_user, is_admin: bool) -> Assignment:
    """Whose place a reassignment moves: ``from_user``'s, else the actor's own, else the one undecided."""
    active = [a for a in task.assignments.all() if a.is_active]
    if from_user is not None:
        from_id = parse_uuid(getattr(from_user, "pk", from_user))
        source = next((a for a in active if a.assignee_id == from_id), None)
        if source is None or (not is_admin and source is not own):
            raise ValidationFailed(details={"from_user": ["Not an active assignee of this task."]})
        return source
    if own is not None:
        return own
    undecided = [a for a in active if not a.decision]
    if len(undecided) != 1:
        raise ValidationFailed(details={"from_user": ["Say whose place to reassign."]})
    return undecided[0]


def check_reassign_target(request: Request, task: ApprovalTask, source: Assignment, target) -> None:
    check_undecided(source, "That assignee already decided.")
    if any(a.assignee_id == target.pk for a in task.assignments.all() if a.is_active):
        raise Conflict("That user is already an assignee of this task.", code="already_assigned")
    check_assignable(request, task, target, "user")


def find_org_user(reference, organization_id) -> User:
    """The active user of the organization named by id (UUID) or e-mail; 404 for anyone else,
    another organization's user included (as if they did not exist)."""
    qs = User.objects.filter(organization_id=organization_id, is_active=True)
    pk = parse_uuid(reference)
    user = qs.filter(pk=pk).first() if pk is not None else qs.filter(email__iexact=str(reference)[:254]).first()
    if user is None:
        raise NotFound("User not found.")
    return user


def check_may_add_assignee(actor, request: Request, own: Assignment | None) -> None:
    """An assignee of the task, a workflow admin (``workflows.manage``) or ``tasks.manage`` may add one."""
    if own is not None or actor.has_code(TASKS_MANAGE) or actor.has_code(WORKFLOWS_MANAGE):
        return
    check_visible(actor, request, "Task")
    raise Forbidden(
        "Only an assignee of the task, a workflow admin or tasks.manage can add an approver.", code="not_assignee"
    )


def retractable_assignment(actor, task: ApprovalTask, request: Request) -> Assignment:
    """The actor's decided place on the task (their own, or the one they took as a delegate).

    Once the task settled (its decision moved the request on) or the request left ``pending``,
    the decision is final: 409 ``decision_final``.
    """
    mine = [a for a in task.assignments.all() if a.is_active and a.assignee_id == actor.pk]
    if not mine:
        check_visible(actor, request, "Task")
        raise Forbidden("You did not decide this task.", code="not_assignee")
    if task.status != TaskStatus.PENDING or request.status != RequestStatus.PENDING:
        raise InvalidTransition(
            "The decision is final: the step has settled.", code="decision_final", details={"status": [task.status]}
        )
    if not mine[0].decision:
        raise InvalidTransition("You have not decided this task.", code="not_decided")
    return mine[0]
