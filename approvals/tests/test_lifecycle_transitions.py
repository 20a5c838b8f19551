"""The transition tables: every entry is allowed, everything else is refused with 409 and changes nothing."""

import itertools

import pytest

from approvals.lifecycle.transitions import (
    REQUEST_TRANSITIONS,
    TASK_ACTIONS_OF_A_CLOSING_REQUEST,
    TASK_TRANSITIONS,
    check_request,
    check_task,
)
from approvals.models import ApprovalTask, TaskStatus
from approvals.tests.test_engine import decide, open_task, submit
from auditlogs.models import AuditLog
from core.exceptions import InvalidTransition
from core.testing import api_client, error_code
from requests.models import Request, RequestStatus
from requests.tests.factories import People, make_flow, user_step

REQUEST_ACTIONS = sorted({action for _, action in REQUEST_TRANSITIONS})
TASK_ACTIONS = sorted({action for _, action in TASK_TRANSITIONS})
ALL_REQUEST_PAIRS = list(itertools.product(RequestStatus.values, REQUEST_ACTIONS))
ALL_TASK_PAIRS = list(itertools.product(TaskStatus.values, TASK_ACTIONS))


# --- the tables themselves (no database) -----------------------------------------------------


@pytest.mark.parametrize(("state", "action"), sorted(REQUEST_TRANSITIONS))
def test_each_request_entry_is_allowed(state, action):
    assert check_request(Request(status=state), action) == REQUEST_TRANSITIONS[(state, action)]


@pytest.mark.parametrize(("state", "action"), [pair for pair in ALL_REQUEST_PAIRS if pair not in REQUEST_TRANSITIONS])
def test_each_other_request_transition_is_refused(state, action):
    with pytest.raises(InvalidTransition) as exc:
        check_request(Request(status=state), action)
    assert exc.value.status_code == 409 and exc.value.code == "invalid_transition"
    assert exc.value.details == {"status": [state]}


@pytest.mark.parametrize(("state", "action"), sorted(TASK_TRANSITIONS))
def test_each_task_entry_is_allowed_while_the_request_is_pending(state, action):
    task = ApprovalTask(status=state)
    assert check_task(task, action, request=Request(status=RequestStatus.PENDING)) == TASK_TRANSITIONS[(state, action)]


@pytest.mark.parametrize(("state", "action"), [pair for pair in ALL_TASK_PAIRS if pair not in TASK_TRANSITIONS])
def test_each_other_task_transition_is_refused(state, action):
    with pytest.raises(InvalidTransition) as exc:
        check_task(ApprovalTask(status=state), action, request=Request(status=RequestStatus.PENDING))
    assert exc.value.status_code == 409 and exc.value.code == "task_closed"


@pytest.mark.parametrize(
    ("request_state", "action"),
    [
        (state, action)
        for state in RequestStatus.values
        if state != RequestStatus.PENDING
        for action in TASK_ACTIONS
        if action not in TASK_ACTIONS_OF_A_CLOSING_REQUEST
    ],
)
def test_a_pending_task_of_a_request_that_is_not_pending_is_closed(request_state, action):
    with pytest.raises(InvalidTransition) as exc:
        check_task(ApprovalTask(status=TaskStatus.PENDING), action, request=Request(status=request_state))
    assert exc.value.code == "task_closed"


def test_cancel_is_how_a_closing_request_ends_its_open_tasks():
    for state in RequestStatus.values:
        request = Request(status=state)
        assert check_task(ApprovalTask(status=TaskStatus.PENDING), "cancel", request=request) == TaskStatus.CANCELLED


# --- through the API: refused transitions answer 409 and change nothing ------------------------


@pytest.fixture
def p(org):
    return People(org)


ENDPOINTS = {  # request action -> (who, method, path suffix, body)
    "submit": ("requester", "post", "submit/", {}),
    "withdraw": ("requester", "post", "withdraw/", {}),
    "cancel": ("admin", "post", "cancel/", {"reason": "x"}),
    "resubmit": ("requester", "post", "resubmit/", {}),
    "edit": ("requester", "patch", "", {"title": "New title"}),
}


def _request_in(p, org, state) -> Request:
    version = make_flow(org, [user_step(1, "Manager", p.mark)])
    rid = submit(p.alice, version)["id"]
    # The test puts the row in the state under test directly (only the lifecycle does so in the app).
    Request.objects.filter(pk=rid).update(status=state, returned_from_stage=1)
    return Request.objects.get(pk=rid)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "action"),
    [
        (s, a)
        for s, a in itertools.product(RequestStatus.values, sorted(ENDPOINTS))
        if (s, a) not in REQUEST_TRANSITIONS
    ],
)
def test_refused_request_transitions_answer_409_and_change_nothing(org, p, state, action):
    request = _request_in(p, org, state)
    who, method, suffix, body = ENDPOINTS[action]
    user = p.alice if who == "requester" else p.admin
    rows = AuditLog.objects.count()
    r = getattr(api_client(user), method)(f"/api/v1/requests/{request.pk}/{suffix}", body, format="json")
    assert r.status_code == 409 and error_code(r) == "invalid_transition", r.content
    after = Request.objects.get(pk=request.pk)
    assert (after.status, after.round, after.title) == (state, request.round, request.title)
    assert AuditLog.objects.count() == rows


@pytest.mark.django_db
@pytest.mark.parametrize("closed", [TaskStatus.APPROVED, TaskStatus.REJECTED, TaskStatus.SKIPPED, TaskStatus.CANCELLED])
@pytest.mark.parametrize("what", ["approve", "reject", "request-changes", "reassign"])
def test_refused_task_transitions_answer_409_and_change_nothing(org, p, closed, what):
    version = make_flow(org, [user_step(1, "Manager", p.mark)])
    task = open_task(submit(p.alice, version)["id"])
    ApprovalTask.objects.filter(pk=task.pk).update(status=closed)
    rows = AuditLog.objects.count()
    if what == "reassign":
        r = api_client(p.mark).post(f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.bob.pk)}, format="json")
    else:
        r = decide(p.mark, task, what, comment="no")
    assert r.status_code == 409 and error_code(r) == "task_closed"
    assert ApprovalTask.objects.get(pk=task.pk).status == closed
    assert not task.assignments.exclude(decision="").exists()
    assert AuditLog.objects.count() == rows
