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

from approvals.models import ApprovalTask
from approvals.selectors import task_detail_queryset
from core.exceptions import NotFound
from requests.models import Request


def lock_request(*, organization_id, pk) -> Request:
    """``SELECT ... FOR UPDATE`` the organization's request ``pk`` (in the caller's transaction); 404 if none."""
    try:
        return (
            Request.objects.select_for_update(of=("self",))
            .select_related("workflow_version", "definition", "requester", "organization")
            .get(pk=pk, organization_id=organization_id)
        )
    except (Request.DoesNotExist, DjangoValidationError, ValueError, TypeError):
        raise NotFound("Request not found.") from None


def _task_request_id(*, organization_id, task_id):
    try:
        request_id = (
            ApprovalTask.objects.filter(pk=task_id, organization_id=organization_id)
            .values_list("request_id", flat=True)
            .first()
        )
    except (DjangoValidationError, ValueError, TypeError):  # a malformed id is not found
        request_id = None
    if request_id is None:
        raise NotFound("Task not found.")
    return request_id


def load_task(task_id, *, lock: bool = False) -> ApprovalTask:
    """The task with its step, request and assignments (assignees and whom they act for)."""
    qs = task_detail_queryset()
    return (qs.select_for_update(of=("self",)) if lock else qs).get(pk=task_id)


def lock_task(*, organization_id, task_id) -> tuple[Request, ApprovalTask]:
    """Lock the task's request, then the task (inside the caller's transaction): (request, task)."""
    request_id = _task_request_id(organization_id=organization_id, task_id=task_id)
    request = lock_request(organization_id=organization_id, pk=request_id)
    task = load_task(task_id, lock=True)
    task.request = request  # one instance: what a transition changes is what the caller answers with
    return request, task


@contextmanager
def locked_task(*, organization_id, task_id) -> Iterator[tuple[Request, ApprovalTask]]:
    """One transaction holding ``lock_task``'s rows."""
    with transaction.atomic():
        yield lock_task(organization_id=organization_id, task_id=task_id)
