"""The declared transitions of requests and tasks: ``(state, action) -> state``.

Every transition checks its starting state here before it writes (``check_request``,
``check_task``); anything not in a table is refused with 409. docs/architecture.md carries the
same tables (``approvals/tests/test_lifecycle_docs.py`` keeps them in step).
"""

from __future__ import annotations

from approvals.models import ApprovalTask, TaskStatus
from core.exceptions import InvalidTransition
from requests.models import Request, RequestStatus

R, T = RequestStatus, TaskStatus

REQUEST_TRANSITIONS: dict[tuple[str, str], str] = {
    (R.DRAFT, "edit"): R.DRAFT,
    (R.CHANGES_REQUESTED, "edit"): R.CHANGES_REQUESTED,
    (R.DRAFT, "submit"): R.PENDING,
    (R.CHANGES_REQUESTED, "resubmit"): R.PENDING,
    (R.PENDING, "approve"): R.APPROVED,  # the last stage approved (or none applied)
    (R.PENDING, "reject"): R.REJECTED,
    (R.PENDING, "request_changes"): R.CHANGES_REQUESTED,
    (R.DRAFT, "withdraw"): R.WITHDRAWN,
    (R.PENDING, "withdraw"): R.WITHDRAWN,
    (R.CHANGES_REQUESTED, "withdraw"): R.WITHDRAWN,
    (R.PENDING, "cancel"): R.CANCELLED,
    (R.PENDING, "migrate"): R.PENDING,  # to another published version of its workflow
    (R.CHANGES_REQUESTED, "cancel"): R.CANCELLED,
}

# Every action starts from a pending task; all but ``cancel`` (how a closing request ends its open
# tasks) also need the request to be pending.
TASK_TRANSITIONS: dict[tuple[str, str], str] = {
    (T.PENDING, "decide"): T.PENDING,  # one assignee's decision; the task settles by its mode
    (T.PENDING, "reassign"): T.PENDING,
    (T.PENDING, "add_assignee"): T.PENDING,
    (T.PENDING, "retract"): T.PENDING,  # one assignee takes their decision back; the task had not settled
    (T.PENDING, "migrate"): T.PENDING,  # onto the new version's step of the same key: assignments kept
    (T.PENDING, "approve"): T.APPROVED,
    (T.PENDING, "reject"): T.REJECTED,
    (T.PENDING, "cancel"): T.CANCELLED,
}
TASK_REQUEST_STATES = frozenset({R.PENDING})
TASK_ACTIONS_OF_A_CLOSING_REQUEST = frozenset({"cancel"})


def check_request(request: Request, action: str) -> str:
    """The state ``action`` takes ``request`` to; 409 ``invalid_transition`` if it may not."""
    target = REQUEST_TRANSITIONS.get((request.status, action))
    if target is None:
        verb = action.replace("_", " ")
        raise InvalidTransition(
            f"Cannot {verb} a request that is {request.status}.", details={"status": [request.status]}
        )
    return target


def check_task(task: ApprovalTask, action: str, *, request: Request) -> str:
    """The state ``action`` takes ``task`` to; 409 ``task_closed`` if the task or its request is closed."""
    target = TASK_TRANSITIONS.get((task.status, action))
    request_open = request.status in TASK_REQUEST_STATES or action in TASK_ACTIONS_OF_A_CLOSING_REQUEST
    if target is None or not request_open:
        raise InvalidTransition(
            f"This task is closed ({task.status}).", code="task_closed", details={"status": [task.status]}
        )
    return target
