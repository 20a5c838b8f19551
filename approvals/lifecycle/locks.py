"""Lock helpers: the one way a transition takes hold of its rows. Lock first, then decide.

Lock order, everywhere (the SLA scan included): **request -> task -> assignment**. A transition
locks the request row first (concurrent transitions of one request serialize there), then the
task it acts on; assignments are read and written only under their task's lock. Every helper
takes the ``organization_id`` and puts it in the locking query itself, so another
organization's row is never locked: its id answers 404 without waiting on anyone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from approvals import routing
from approvals.models import ApprovalTask, Assignment
from approvals.selectors import task_detail_queryset
from core.compiled_query import CompiledQuery
from core.exceptions import NotFound
from core.ids import parse_uuid
from requests.models import Request
from workflows.published import published_version

_REQUEST_READS = ("workflow_version", "definition", "requester", "organization")


def lock_request(*, organization_id, pk) -> Request:
    """``SELECT ... FOR UPDATE`` the organization's request ``pk`` (in the caller's transaction); 404 if none."""
    try:
        return (
            Request.objects.select_for_update(of=("self",))
            .select_related(*_REQUEST_READS)
            .get(pk=pk, organization_id=organization_id)
        )
    except (Request.DoesNotExist, DjangoValidationError, ValueError, TypeError):
        raise NotFound("Request not found.") from None


def load_task(task_id, *, organization_id, lock: bool = False) -> ApprovalTask:
    """The task with its step, request and assignments (assignees and whom they act for)."""
    qs = task_detail_queryset(organization_id=organization_id)
    return (qs.select_for_update(of=("self",)) if lock else qs).get(pk=task_id)


# The decision's lock-and-load and its assignments, compiled once per process (core.compiled_query:
# compiling the joined statement cost more Python time than PostgreSQL spent running it). The
# version and its steps are not joined: a published version never changes (workflows.published).
_LOCK_TASK = CompiledQuery(
    lambda task_id, organization_id: (
        ApprovalTask.objects.select_for_update(of=("request", "self"))
        .select_related("request__organization", "request__definition", "request__requester")
        .filter(pk=task_id, organization_id=organization_id)
    )
)
_ASSIGNMENTS = CompiledQuery(
    lambda task_id: Assignment.objects.filter(task_id=task_id).select_related("assignee", "on_behalf_of")
)
_ASSIGNMENTS_CACHE = ApprovalTask.assignments.field.remote_field.cache_name


def _attach_assignments(task: ApprovalTask) -> ApprovalTask:
    """``task.assignments.all()`` answered from one read, as ``assignments_with_users()`` prefetches."""
    rows = _ASSIGNMENTS.fetch(task_id=task.pk)
    for assignment in rows:
        Assignment.task.field.set_cached_value(assignment, task)
    qs = task.assignments.get_queryset()
    qs._result_cache, qs._prefetch_done = rows, True
    task._prefetched_objects_cache = {_ASSIGNMENTS_CACHE: qs}
    return task


def lock_task(*, organization_id, task_id) -> tuple[Request, ApprovalTask]:
    """Lock the task's request, then the task (inside the caller's transaction): (request, task).

    One statement takes both row locks, ``FOR UPDATE OF request, task``: PostgreSQL locks the rows
    of a join in the order the ``OF`` list names them, so the lock order above holds, and when it
    had to wait it re-reads both locked rows as committed (nothing decided on is stale). What a
    transition reads of the request comes in the same row; its version and the task's step come
    from the process's published versions. A second statement, after the lock (so it sees what a
    transaction it waited for committed), loads the assignments with their users. Issue 14: this
    was five statements.
    """
    pk, org = parse_uuid(task_id), parse_uuid(organization_id)
    rows = _LOCK_TASK.fetch(task_id=pk, organization_id=org) if pk and org else []
    if not rows:
        raise NotFound("Task not found.")
    task = rows[0]
    request = task.request
    version = published_version(request.workflow_version_id, organization_id=request.organization_id)
    Request.workflow_version.field.set_cached_value(request, version)
    ApprovalTask.step.field.set_cached_value(task, routing.step_of(version, task.step_id))
    return request, _attach_assignments(task)  # one request instance: what a transition changes is the answer


@contextmanager
def locked_task(*, organization_id, task_id) -> Iterator[tuple[Request, ApprovalTask]]:
    """One transaction holding ``lock_task``'s rows."""
    with transaction.atomic():
        yield lock_task(organization_id=organization_id, task_id=task_id)
