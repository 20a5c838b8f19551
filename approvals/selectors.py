"""Reads of tasks and delegations, and who sees a request (through them)."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import BooleanField, Count, Exists, F, Func, OuterRef, Prefetch, Q, QuerySet, Subquery, Window
from django.utils import timezone

from accounts.catalog import REQUESTS_VIEW_ALL
from approvals.models import ApprovalTask, Assignment, Delegation, TaskStatus
from core.compiled_query import CompiledQuery
from core.exceptions import NotFound
from core.ids import parse_uuid
from requests.models import Request
from workflows.models import Step


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


# --- the inbox list (GET tasks/) ----------------------------------------------------------------
# The same tasks as ``inbox``, read as the list's columns, one statement per page (rows and total).
# Issue 14: the list of an approver with ~300 pending tasks among 30,000 of the organization cost
# 4 statements, two of which scanned every task of the organization (the planner prefers a
# sequential scan to 300 probes of the primary key for an EXISTS), and a model instance per
# row (request with its data) for a serializer that reads 13 values.


class _InArray(Func):
    """``expression = ANY(array)``."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        (lhs, lhs_params), (rhs, rhs_params) = (compiler.compile(e) for e in self.source_expressions)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


class InboxDelegation(NamedTuple):
    from_user_id: uuid.UUID
    workflow_id: uuid.UUID | None


def inbox_delegations(*, user, at=None) -> list[InboxDelegation]:
    """``delegators_of(user)`` as the list needs it: whom the user acts for, and in which workflow."""
    rows = _INBOX_DELEGATIONS.fetch(organization_id=user.organization_id, user_id=user.pk, at=at or timezone.now())
    return [InboxDelegation(row["from_user_id"], row["workflow_id"]) for row in rows]


# Compiled once per process (core/compiled_query.py): the compile cost more than the query.
_INBOX_DELEGATIONS = CompiledQuery(
    lambda organization_id, user_id, at: Delegation.objects.filter(
        organization_id=organization_id, to_user_id=user_id, starts_at__lte=at, ends_at__gt=at
    ).values("from_user_id", "workflow_id")
)


def inbox_list(*, user_id, organization_id, delegations) -> QuerySet[ApprovalTask]:
    """``inbox(user=..., status=None)`` for the list, before its filters (``TaskFilter``).

    The tasks come from the user's and their delegators' active assignments: on PostgreSQL as
    ``id = ANY(ARRAY(...))``, which the planner answers by probing the primary key, where the
    same condition as ``EXISTS`` made it scan the organization's tasks (20 ms for 30,000). Without
    delegations that set is exactly the user's own tasks; with them, the ``inbox`` condition
    (``Exists`` over the user's or a delegator's assignment, self-approval excluded) still applies.
    """
    assigned = (
        Assignment.objects.filter(
            organization_id=organization_id,
            is_active=True,
            assignee_id__in=[user_id, *(d.from_user_id for d in delegations)],
        )
        .values("task_id")
        .order_by()
    )
    postgres = connection.vendor == "postgresql"
    candidates = _InArray(F("pk"), ArraySubquery(assigned)) if postgres else Q(pk__in=assigned)
    qs = ApprovalTask.objects.for_organization(organization_id).filter(candidates)
    if delegations:
        mine = Assignment.objects.filter(task=OuterRef("pk"), assignee_id=user_id, is_active=True)
        delegated = (
            Assignment.objects.filter(task=OuterRef("pk"))
            .filter(delegated_assignment_q(delegations, request_path="task__request__"))
            .exclude(task__request__requester_id=user_id, task__step__allow_self_approval=False)
        )
        qs = qs.filter(Exists(mine) | Exists(delegated)).annotate(
            has_own=Exists(mine),
            delegated_for=Subquery(delegated.order_by("created_at").values("assignee_id")[:1]),
        )
    return qs


INBOX_LIST_COLUMNS = ("id", "request_id", "step_id", "stage", "round", "status", "due_at", "escalation_level")


def inbox_list_rows(queryset, *, user_id, delegated: bool) -> QuerySet:
    """``inbox_list`` (filtered) as dicts of the list's values, in the inbox's order, with ``total``.

    The request's title and reference and the step's name are subqueries: computed for the
    page's rows only, after the sort, where joins were made for every task of the inbox.
    ``total`` is the row count across pages (``COUNT(*) OVER ()``): no separate COUNT.
    """
    # No ORDER BY in these: one row each (a task has one active assignment per user), and the
    # models' default orderings would join the step's version and workflow to sort one row.
    mine = Assignment.objects.filter(task=OuterRef("pk"), assignee_id=user_id, is_active=True).order_by()
    request = Request.all_objects.filter(pk=OuterRef("request_id")).order_by()
    step = Step.objects.filter(pk=OuterRef("step_id")).order_by()
    qs = queryset.annotate(
        own_acting_for=Subquery(mine.values("on_behalf_of_id")[:1]),
        request_title=Subquery(request.values("title")[:1]),
        request_reference=Subquery(request.values("reference")[:1]),
        step_name=Subquery(step.values("name")[:1]),
        total=Window(Count("*")),
    )
    extra = ("has_own", "delegated_for") if delegated else ()
    names = (*INBOX_LIST_COLUMNS, "own_acting_for", "request_title", "request_reference", "step_name", "total")
    return qs.values(*names, *extra).order_by("due_at", "created_at")
