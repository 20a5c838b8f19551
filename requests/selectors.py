"""Reads of requests: visibility, lists, detail, timeline."""

from __future__ import annotations

import functools
import itertools

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects
from django.utils import timezone

from accounts.models import User
from approvals.models import ApprovalTask, Assignment, TaskStatus
from approvals.routing import steps_of
from approvals.selectors import visible_requests
from approvals.sla import is_task_overdue, overdue_request_exists, request_escalation_level
from auditlogs.models import AuditLog
from core.exceptions import NotFound
from core.ids import parse_uuid
from requests.models import Attachment, Comment, Request


def request_list(*, user) -> QuerySet[Request]:
    """Visible requests with their SLA annotations; ``requests.filters.RequestFilter`` narrows them."""
    return with_sla(visible_requests(user=user).select_related("definition", "requester", "workflow_version"))


def with_sla(qs: QuerySet[Request]) -> QuerySet[Request]:
    """Annotate ``overdue`` (a pending task of the current round past ``due_at``) and
    ``escalation_level`` (highest over those pending tasks, 0 if none): two subqueries, no extra query."""
    return qs.annotate(overdue=overdue_request_exists(), escalation_level=request_escalation_level())


def _tasks_prefetch() -> Prefetch:
    assignments = Assignment.objects.select_related("assignee", "on_behalf_of").order_by("created_at")
    tasks = (
        ApprovalTask.objects.select_related("step")
        .prefetch_related(Prefetch("assignments", queryset=assignments))
        .order_by("round", "stage", "created_at")
    )
    return Prefetch("tasks", queryset=tasks)


def request_detail_queryset(*, user) -> QuerySet[Request]:
    return with_sla(
        visible_requests(user=user)
        .select_related("definition", "requester", "workflow_version")
        .prefetch_related(
            _tasks_prefetch(),
            Prefetch("comments", queryset=Comment.objects.select_related("author")),
            Prefetch("attachments", queryset=Attachment.objects.select_related("uploaded_by")),
        )
    )


def created_request_detail(*, request: Request) -> Request:
    """The detail of a request ``request_create`` has just returned (the answer to ``POST requests/``),
    as ``request_get`` gives it, from that instance (issue 14): it holds what the transaction wrote
    (the insert's and the submit's values, its version, definition and requester), so the request row
    is not read again. Only the tasks a submit created are read, with their assignments and the
    assignees' e-mails (one statement, none for a draft); ``overdue`` and ``escalation_level`` are
    ``with_sla``'s, computed over those tasks. A new request has no comments or attachments."""
    if request.submitted_at is None:  # a draft: never routed, so no tasks
        _cache_related(request, "tasks", [])
    elif connection.vendor == "postgresql":
        _cache_related(request, "tasks", _created_tasks(request))
    else:
        prefetch_related_objects([request], _tasks_prefetch())
    _cache_related(request, "comments", [])
    _cache_related(request, "attachments", [])
    now = timezone.now()
    pending = [t for t in request.tasks.all() if t.round == request.round and t.status == TaskStatus.PENDING]
    request.overdue = any(is_task_overdue(t, now) for t in pending)
    request.escalation_level = max((t.escalation_level for t in pending), default=0)
    return request


@functools.cache
def _created_tasks_sql() -> tuple[str, list[str], list[str]]:
    quote = connection.ops.quote_name
    task_fields = [f.attname for f in ApprovalTask._meta.concrete_fields]
    assignment_fields = [f.attname for f in Assignment._meta.concrete_fields]
    columns = [
        *(f"t.{quote(ApprovalTask._meta.get_field(f).column)}" for f in task_fields),
        *(f"a.{quote(Assignment._meta.get_field(f).column)}" for f in assignment_fields),
        f"u.{quote(User._meta.get_field('email').column)}",
    ]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(ApprovalTask._meta.db_table)} t "  # noqa: S608 (names are ours)
        f"LEFT JOIN {quote(Assignment._meta.db_table)} a ON a.task_id = t.id "
        f"LEFT JOIN {quote(User._meta.db_table)} u ON u.id = a.assignee_id "
        "WHERE t.organization_id = %s AND t.request_id = %s "
        "ORDER BY t.round, t.stage, t.created_at, t.id, a.created_at"
    )
    return sql, task_fields, assignment_fields


def _created_tasks(request: Request) -> list[ApprovalTask]:
    """The request's tasks as ``_tasks_prefetch`` gives them (steps, assignments, assignees' e-mails).

    Raw SQL because it pays (issue 14, create+submit's CPU in process): the tasks prefetch with its
    nested assignments prefetch was two statements whose compiling cost ~4 ms of CPU per request;
    one join, built once, costs a fraction. The steps come from the published version's cached
    route (``approvals.routing.steps_of``, the one the submit has just used)."""
    sql, task_fields, assignment_fields = _created_tasks_sql()
    steps = {step.pk: step for step in steps_of(request.workflow_version)}
    n_task, n_assignment = len(task_fields), len(assignment_fields)
    tasks: list[ApprovalTask] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, [request.organization_id, request.pk])
        rows = cursor.fetchall()
    for _, group in itertools.groupby(rows, key=lambda row: row[0]):
        group = list(group)
        task = ApprovalTask.from_db(connection.alias, task_fields, group[0][:n_task])
        if task.step_id in steps:  # else read when serialized (never for a published version)
            task.step = steps[task.step_id]
        assignments = []
        for row in group:
            values = row[n_task : n_task + n_assignment]
            if values[0] is None:  # a task without assignments (skipped)
                continue
            assignment = Assignment.from_db(connection.alias, assignment_fields, values)
            assignment.assignee = User.from_db(connection.alias, ["id", "email"], [assignment.assignee_id, row[-1]])
            assignment.task = task
            assignments.append(assignment)
        _cache_related(task, "assignments", assignments)
        tasks.append(task)
    return tasks


def _cache_related(obj, name: str, rows: list) -> None:
    """Rows of a reverse relation known without a query, where ``prefetch_related`` keeps them."""
    qs = getattr(obj, name).all()
    qs._result_cache, qs._prefetch_done = rows, True
    obj.__dict__.setdefault("_prefetched_objects_cache", {})[name] = qs  # the accessor is the cache's key


def request_get(*, user, request_id, detail: bool = True) -> Request:
    pk = parse_uuid(request_id)
    qs = request_detail_queryset(user=user) if detail else visible_requests(user=user)
    obj = qs.filter(pk=pk).first() if pk else None
    if obj is None:
        raise NotFound("Request not found.")
    return obj


def timeline(*, request: Request) -> QuerySet[AuditLog]:
    """Audit rows of the request, its tasks, comments and attachments, in chain order."""
    task_ids = [str(i) for i in ApprovalTask.objects.filter(request=request).values_list("id", flat=True)]
    comment_ids = [str(i) for i in Comment.objects.filter(request=request).values_list("id", flat=True)]
    attachment_ids = [str(i) for i in Attachment.objects.filter(request=request).values_list("id", flat=True)]
    return (
        AuditLog.objects.filter(organization_id=request.organization_id)
        .filter(
            Q(target_type="requests.request", target_id=str(request.pk))
            | Q(target_type="approvals.approvaltask", target_id__in=task_ids)
            | Q(target_type="requests.comment", target_id__in=comment_ids)
            | Q(target_type="requests.attachment", target_id__in=attachment_ids)
        )
        .select_related("actor")
        .order_by("sequence")
    )
