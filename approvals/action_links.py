"""Signed action links of task e-mails (issue 16.1): ``SITE_URL/act/<token>/``.

The token is Django's signing of ``{assignment, organization, round, expiry}`` (salted; any change
breaks the signature). It expires at the task's due time + ``ACTION_LINK_GRACE_DAYS`` (7), at most
``ACTION_LINK_MAX_DAYS`` (30) after it was issued, and works once: the assignment it names must still
be active and undecided, on a pending task of the same round of a pending request. A link never
grants more than its assignee has: the decision goes through ``task_decide`` as that person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils import timezone

from approvals.models import Assignment, TaskStatus

SALT = "approvals.action-link"


@dataclass
class LinkRefused(Exception):
    """Why a link does nothing: ``status`` is the page's HTTP status, ``reason`` a stable word."""

    status: int
    reason: str
    message: str


def expiry_of(task, *, now: dt.datetime | None = None) -> dt.datetime:
    now = now or timezone.now()
    cap = now + dt.timedelta(days=settings.ACTION_LINK_MAX_DAYS)
    due = task.due_at + dt.timedelta(days=settings.ACTION_LINK_GRACE_DAYS) if task.due_at else cap
    return min(due, cap)


def make_token(assignment: Assignment, task) -> str:
    payload = {
        "a": str(assignment.pk),
        "o": str(task.organization_id),
        "r": task.round,
        "x": int(expiry_of(task).timestamp()),
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def action_url(assignment: Assignment, task) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/act/{make_token(assignment, task)}/"


def resolve(token: str) -> Assignment:
    """The assignment a valid, unused link stands for (task, request and people loaded), or ``LinkRefused``."""
    try:
        claim = signing.loads(token[:1000], salt=SALT)
        assignment_id, organization_id, round_, expires = claim["a"], claim["o"], int(claim["r"]), int(claim["x"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkRefused(400, "invalid", "This link is not valid: it was changed or cut short.") from None
    if timezone.now().timestamp() >= expires:
        raise LinkRefused(410, "expired", "This link has expired. Open the request in the application instead.")
    assignment = (
        Assignment.objects.select_related(
            "assignee", "on_behalf_of", "task__step", "task__request__requester", "task__request__definition"
        )
        .filter(pk=assignment_id, organization_id=organization_id)
        .first()
    )
    if assignment is None:
        raise LinkRefused(404, "not_found", "This task no longer exists.")
    task, request = assignment.task, assignment.task.request
    if assignment.decision:
        raise LinkRefused(409, "used", "This link was already used: your decision is recorded.")
    if (
        not assignment.is_active
        or task.round != round_
        or task.status != TaskStatus.PENDING
        or request.status != "pending"
    ):
        raise LinkRefused(
            409,
            "superseded",
            "This link no longer applies: the task was decided, reassigned, or the request was withdrawn.",
        )
    return assignment
