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
from django.db.models import prefetch_related_objects

from approvals.models import ApprovalTask
from approvals.selectors import assignments_with_users, task_detail_queryset
from core.exceptions import NotFound
from requests.models import Request

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


def _with_assignments(task: ApprovalTask) -> ApprovalTask:
    prefetch_related_objects([task], assignments_with_users())
    return task


def load_task(task_id, *, organization_id, lock: bool = False) -> ApprovalTask:
    """The task with its step, request and assignments (assignees and whom they act for)."""
    qs = task_detail_queryset(organization_id=organization_id)
    return (qs.select_for_update(of=("self",)) if lock else qs).get(pk=task_id)


def lock_task(*, organization_id, task_id) -> tuple[Request, ApprovalTask]:
    """Lock the task's request, then the task (inside the caller's transaction): (request, task).

    One statement takes both row locks, ``FOR UPDATE OF request, task``: PostgreSQL locks the rows
    of a join in the order the ``OF`` list names them, so the lock order above holds, and when it
    had to wait it re-reads both locked rows as committed (nothing decided on is stale). The step
    (immutable once published) and what a transition reads of the request come in the same row;
    a second statement loads the assignments with their users. Issue 14: this was five statements.
    """
    try:
        task = (
            ApprovalTask.objects.select_for_update(of=("request", "self"))
            .select_related("step", *(f"request__{name}" for name in _REQUEST_READS))
            .get(pk=task_id, organization_id=organization_id)
        )
    except (ApprovalTask.DoesNotExist, DjangoValidationError, ValueError, TypeError):  # a malformed id too
        raise NotFound("Task not found.") from None
    return task.request, _with_assignments(task)  # one request instance: what a transition changes is the answer


@contextmanager
def locked_task(*, organization_id, task_id) -> Iterator[tuple[Request, ApprovalTask]]:
    """One transaction holding ``lock_task``'s rows."""
    with transaction.atomic():
        yield lock_task(organization_id=organization_id, task_id=task_id)
