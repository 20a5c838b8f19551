"""Reads of tasks and delegations, and who sees a request (through them)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.catalog import REQUESTS_VIEW_ALL
from approvals.models import ApprovalTask, Assignment, Delegation, TaskStatus
from core.exceptions import NotFound
from core.ids import parse_uuid
from requests.models import Request


def delegators_of(user, *, at=None) -> list[Delegation]:
    """Delegations in force now that make ``user`` act for someone."""
    at = at or timezone.now()
    return list(
        Delegation.objects.filter(
            organization_id=user.organization_id, to_user=user, starts_at__lte=at, ends_at__gt=at
        ).select_related("from_user")
    )


def delegated_assignment_q(delegations, *, request_path: str) -> Q:
    """Assignments (active) of the people who delegate to the caller, within each delegation's scope."""
    q = Q(pk__in=[])
    for d in delegations:
        part = Q(assignee_id=d.from_user_id, is_active=True)
        if d.workflow_id:
            part &= Q(**{f"{request_path}definition_id": d.workflow_id})
        q |= part
    return q


def inbox(*, user, status: str | None = "pending") -> QuerySet[ApprovalTask]:
    """Tasks the user may decide: their own active assignments and those of people delegating to them.

    Each task is annotated with ``acting_for``: whom the user acts for (their assignment's
    ``on_behalf_of``, or the delegator), None when the task is their own.
    """
    mine = Assignment.objects.filter(task=OuterRef("pk"), assignee=user, is_active=True)
    q = Q(Exists(mine))
    delegations = delegators_of(user)
    delegated = None
    if delegations:
        # A delegation is never used for a task of the delegate's own request (self-approval).
        delegated = (
            Assignment.objects.filter(task=OuterRef("pk"))
            .filter(delegated_assignment_q(delegations, request_path="task__request__"))
            .exclude(task__request__requester_id=user.pk, task__step__allow_self_approval=False)
        )
        q |= Q(Exists(delegated))
    qs = ApprovalTask.objects.for_organization(user.organization_id).filter(q)
    if status and status != "all":
        qs = qs.filter(status__in=status.split(","))
    acting = Subquery(mine.values("on_behalf_of_id")[:1])
    qs = qs.annotate(own_acting_for=acting, has_own=Exists(mine))
    if delegated is not None:
        qs = qs.annotate(delegated_for=Subquery(delegated.order_by("created_at").values("assignee_id")[:1]))
    return qs.select_related("request", "step").order_by("due_at", "created_at")


def acting_for(task) -> str | None:
    own = getattr(task, "has_own", False)
    value = task.own_acting_for if own else getattr(task, "delegated_for", None)
    return str(value) if value else None


def assignments_with_users() -> Prefetch:
    """A task's assignments with the assignee and whom they act for: one query (joined users)."""
    return Prefetch("assignments", queryset=Assignment.objects.select_related("assignee", "on_behalf_of"))


def task_detail_queryset(*, organization_id) -> QuerySet[ApprovalTask]:
    """An organization's tasks with their step, request and assignments (assignees and whom they act for)."""
    return (
        ApprovalTask.objects.filter(organization_id=organization_id)
        .select_related("step", "request")
        .prefetch_related(assignments_with_users())
    )


def task_get(*, user, task_id) -> ApprovalTask:
    pk = parse_uuid(task_id)
    task = inbox(user=user, status=None).filter(pk=pk).first() if pk else None
    if task is None:
        raise NotFound("Task not found.")
    return task


def delegations_for(*, user, direction: str = "given") -> QuerySet[Delegation]:
    qs = Delegation.objects.filter(organization_id=user.organization_id).select_related(
        "from_user", "to_user", "workflow"
    )
    if direction == "received":
        return qs.filter(to_user=user)
    if direction == "active":
        now = timezone.now()
        return qs.filter(Q(from_user=user) | Q(to_user=user), starts_at__lte=now, ends_at__gt=now)
    return qs.filter(from_user=user)


def delegation_not_used_for(delegations) -> dict:
    """delegation id -> ids of the open tasks of its delegator it is not used for, because the
    delegate requested them and the step does not allow self-approval (one query for the lot)."""
    out: dict = {d.pk: [] for d in delegations}
    if not delegations:
        return out
    rows = list(
        Assignment.objects.filter(
            assignee_id__in={d.from_user_id for d in delegations},
            is_active=True,
            decision="",
            task__status=TaskStatus.PENDING,
            task__request__requester_id__in={d.to_user_id for d in delegations},
            task__step__allow_self_approval=False,
        ).values_list("task_id", "assignee_id", "task__request__requester_id", "task__request__definition_id")
    )
    for d in delegations:
        out[d.pk] = sorted(
            str(task_id)
            for task_id, assignee_id, requester_id, definition_id in rows
            if assignee_id == d.from_user_id
            and requester_id == d.to_user_id
            and (d.workflow_id is None or d.workflow_id == definition_id)
        )
    return out


__all__ = [
    "TaskStatus",
    "acting_for",
    "assignments_with_users",
    "delegated_assignment_q",
    "delegation_not_used_for",
    "delegations_for",
    "delegators_of",
    "inbox",
    "task_detail_queryset",
    "task_get",
]


# Who sees a request: a rule over assignments and delegations, so it lives with them; the
# requests API (requests/selectors.py) and the lifecycle checks both read it here.
def participation_q(user) -> Q:
    """Requests ``user`` takes part in: requester, any assignee (past too), acting-for, or delegate."""
    assigned = Assignment.objects.filter(task__request=OuterRef("pk")).filter(Q(assignee=user) | Q(on_behalf_of=user))
    q = Q(requester=user) | Q(Exists(assigned))
    delegations = delegators_of(user)
    if delegations:
        delegated = Assignment.objects.filter(task__request=OuterRef("pk")).filter(
            delegated_assignment_q(delegations, request_path="task__request__")
        )
        q |= Q(Exists(delegated))
    return q


def visible_requests(*, user) -> QuerySet[Request]:
    qs = Request.objects.for_organization(user.organization_id)
    if user.has_code(REQUESTS_VIEW_ALL):
        return qs
    return qs.filter(participation_q(user))


def can_view(*, user, request: Request) -> bool:
    if user is None:
        return True
    if request.organization_id != user.organization_id:
        return False
    if user.has_code(REQUESTS_VIEW_ALL) or request.requester_id == user.pk:
        return True
    return Request.objects.filter(pk=request.pk).filter(participation_q(user)).exists()
