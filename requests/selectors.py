"""Reads of requests: visibility, lists, detail, timeline."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from approvals.models import ApprovalTask, Assignment
from approvals.selectors import visible_requests
from approvals.sla import overdue_request_exists, request_escalation_level
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


def created_request_get(*, user, request_id) -> Request:
    """The detail of a request ``user`` has just created (the answer to ``POST requests/``), as
    ``request_get`` gives it in three statements fewer (issue 14): its requester sees it without
    the participation query, and a new request has no comments or attachments yet (an empty
    queryset is never sent to the database)."""
    obj = (
        with_sla(
            Request.objects.for_organization(user.organization_id)
            .filter(requester=user)
            .select_related("definition", "requester", "workflow_version")
            .prefetch_related(
                _tasks_prefetch(),
                Prefetch("comments", queryset=Comment.objects.none()),
                Prefetch("attachments", queryset=Attachment.objects.none()),
            )
        )
        .filter(pk=request_id)
        .first()
    )
    if obj is None:
        raise NotFound("Request not found.")
    return obj


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
