"""The public transitions: what the API views (and anything acting for a person) call.

Each is one transaction: lock (``locks``), check (``checks``, ``transitions``), write
(``actions.do_*``), then ``outbox.flush()`` last. System paths (the SLA scan) call the ``do_*``
actions themselves, with their own locks: there is no ``system`` flag here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from accounts.catalog import REQUESTS_CANCEL_ANY, WORKFLOWS_MANAGE
from accounts.models import User
from approvals.lifecycle import actions, checks
from approvals.lifecycle.events import Outbox
from approvals.lifecycle.locks import load_task, lock_request, lock_task
from approvals.lifecycle.migrate import do_migrate, plan
from approvals.lifecycle.transitions import check_request, check_task
from approvals.models import ApprovalTask, Assignment
from core.exceptions import ApplicationError, Forbidden, NotFound, ValidationFailed
from requests.models import Request
from requests.validation import validate_form
from workflows.models import VersionStatus, WorkflowVersion


def locked_request_for(actor, request_id) -> Request:
    """Lock the actor's organization's request, then check the actor may see it (404 otherwise)."""
    request = lock_request(organization_id=actor.organization_id, pk=request_id)
    checks.check_visible(actor, request)
    return request


# --- requests --------------------------------------------------------------------------------


@contextmanager
def _request_transition(actor, request_id, *, defer_writes: bool = False) -> Iterator[tuple[Request, Outbox]]:
    """One transaction: the request locked and visible to ``actor``; the events flushed last."""
    outbox = Outbox(actor=actor, defer_writes=defer_writes)
    with transaction.atomic():
        request = locked_request_for(actor, request_id)
        yield request, outbox
        outbox.flush()


def request_submit(*, actor, request_id) -> Request:
    with _request_transition(actor, request_id, defer_writes=True) as (request, outbox):
        checks.check_requester(actor, request, "submit")
        check_request(request, "submit")
        validate_form(request.workflow_version.form_schema, request.data)
        actions.do_submit(request, outbox=outbox)
    return request


def request_withdraw(*, actor, request_id) -> Request:
    with _request_transition(actor, request_id) as (request, outbox):
        checks.check_requester(actor, request, "withdraw")
        check_request(request, "withdraw")
        actions.do_close(request, "withdraw", outbox=outbox)
    return request


def request_cancel(*, actor, request_id, reason: str = "") -> Request:
    with _request_transition(actor, request_id) as (request, outbox):
        if not actor.has_code(REQUESTS_CANCEL_ANY):
            raise Forbidden("Cancelling needs the requests.cancel_any permission.")
        check_request(request, "cancel")
        actions.do_close(request, "cancel", outbox=outbox, comment=reason)
    return request


def request_resubmit(*, actor, request_id, data: dict | None = None, title: str | None = None) -> Request:
    with _request_transition(actor, request_id) as (request, outbox):
        checks.check_requester(actor, request, "resubmit")
        check_request(request, "resubmit")
        validate_form(request.workflow_version.form_schema, request.data if data is None else data)
        actions.do_resubmit(request, title=title, data=data, outbox=outbox)
    return request


# --- tasks -----------------------------------------------------------------------------------


def task_decide(*, actor, task_id, decision: str, comment: str = "", via: str | None = None) -> ApprovalTask:
    """Record ``actor``'s decision on a task: their own place on it, or a delegator's.

    ``via`` names a channel other than the API (``email_link``) in the decision's audit row."""
    value, comment = checks.check_decision(decision, comment)
    outbox = Outbox(actor=actor, defer_writes=True)  # flushed right after do_decide
    with transaction.atomic():
        request, task = lock_task(organization_id=actor.organization_id, task_id=task_id)
        assignment = next((a for a in task.assignments.all() if a.is_active and a.assignee_id == actor.pk), None)
        delegation = None
        if assignment is None:
            assignment, delegation = checks.delegation_for(actor, task, request)
        if assignment is None:
            checks.check_visible(actor, request, "Task")
            raise Forbidden("You are not an assignee of this task.", code="not_assignee")
        check_task(task, "decide", request=request)
        checks.check_undecided(assignment, "You already decided this task.")
        acting = {actor.pk} | ({assignment.on_behalf_of_id} if assignment.on_behalf_of_id else set())
        if delegation is not None:
            acting.add(delegation.from_user_id)
        checks.check_may_decide(request, task, acting)
        task = actions.do_decide(
            request,
            task,
            actor=actor,
            assignment=assignment,
            delegation=delegation,
            value=value,
            comment=comment,
            outbox=outbox,
            via=via,
        )
        outbox.flush()
    return task  # as committed: its assignments and request were updated in place


def task_reassign(*, actor, task_id, to_user, from_user=None, reason: str = "reassigned") -> ApprovalTask:
    """Move one assignee's place on a pending task to another user (the assignee or an org admin)."""
    outbox = Outbox(actor=actor)
    with transaction.atomic():
        request, task = lock_task(organization_id=actor.organization_id, task_id=task_id)
        is_admin = checks.is_org_admin(actor)
        own = next((a for a in task.assignments.all() if a.is_active and a.assignee_id == actor.pk), None)
        if not is_admin and own is None:
            checks.check_visible(actor, request, "Task")
            raise Forbidden("Only an assignee or an org admin can reassign this task.", code="not_assignee")
        check_task(task, "reassign", request=request)
        target = checks.check_user_in_org(to_user, request.organization_id, "user")
        source = checks.reassign_source(task, own=own, from_user=from_user, is_admin=is_admin)
        checks.check_reassign_target(request, task, source, target)
        actions.do_reassign(
            request, task, source=source, target=target, reason=reason, outbox=outbox, actor_id=actor.pk
        )
        outbox.flush()
    return load_task(task.pk, organization_id=task.organization_id)


def task_add_assignee(*, actor, task_id, user, comment: str = "", reason: str = "added") -> Assignment:
    """Add a decider to a pending task: by an assignee of it, a workflow admin or ``tasks.manage``.

    ``user`` is a User, an id or an e-mail of the actor's organization (anyone else: 404). The
    separation-of-duties rules hold for them (400 on ``user``). Idempotent per user.
    """
    outbox = Outbox(actor=actor)
    with transaction.atomic():
        request, task = lock_task(organization_id=actor.organization_id, task_id=task_id)
        own = next((a for a in task.assignments.all() if a.is_active and a.assignee_id == actor.pk), None)
        checks.check_may_add_assignee(actor, request, own)
        check_task(task, "add_assignee", request=request)
        target = user if isinstance(user, User) else checks.find_org_user(user, request.organization_id)
        target = checks.check_user_in_org(target, request.organization_id, "user")
        existing = next((a for a in task.assignments.all() if a.is_active and a.assignee_id == target.pk), None)
        if existing is not None:
            return existing
        checks.check_assignable(request, task, target, "user")
        assignment = actions.do_add_assignee(
            request, task, target=target, reason=reason, comment=comment.strip(), outbox=outbox
        )
        outbox.flush()
    return assignment


def task_retract(*, actor, task_id, comment: str) -> ApprovalTask:
    """Take the actor's decision back while the task has not settled (409 ``decision_final`` after)."""
    comment = (comment or "").strip()
    if not comment:
        raise ValidationFailed(details={"comment": ["Say why you take the decision back."]})
    outbox = Outbox(actor=actor)
    with transaction.atomic():
        request, task = lock_task(organization_id=actor.organization_id, task_id=task_id)
        assignment = checks.retractable_assignment(actor, task, request)
        task = actions.do_retract(request, task, actor=actor, assignment=assignment, comment=comment, outbox=outbox)
        outbox.flush()
    return task


def bulk_approve(*, actor, task_ids: list, comment: str = "") -> list[dict]:
    """Approve each task in its own transaction; one failure does not undo the others."""
    results = []
    for task_id in task_ids:
        try:
            task = task_decide(actor=actor, task_id=task_id, decision="approve", comment=comment)
            results.append({"task": str(task_id), "ok": True, "status": task.status})
        except ApplicationError as exc:
            results.append(
                {
                    "task": str(task_id),
                    "ok": False,
                    "status": None,
                    "error": {"code": exc.code, "message": exc.message, "http_status": exc.status_code},
                }
            )
    return results


# --- version migration -----------------------------------------------------------------------

MIGRATE_MAX_REQUESTS = 200  # per call (each request its own lock and transaction): call again for the rest


def workflow_migrate(
    *,
    actor,
    workflow_id,
    from_version: int,
    to_version: int,
    dry_run: bool = True,
    request_ids: list | None = None,
    restart: bool = False,
    organization_id=None,
) -> dict:
    """Move the pending requests of ``from_version`` to the published ``to_version`` (needs
    ``workflows.manage``); each request in its own transaction, locked first, the oldest
    ``MIGRATE_MAX_REQUESTS`` per call. Returns ``{"results": [one plan per request: migrate,
    restart or left_alone with the reason], "remaining": pending requests of from_version this
    call did not look at}``; a dry run writes nothing.

    ``actor=None`` is the operator's command (``manage.py workflow_migrate``) for ``organization_id``."""
    if actor is not None:
        organization_id = actor.organization_id
        if not actor.has_code(WORKFLOWS_MANAGE):
            raise Forbidden("Migrating requests needs the workflows.manage permission.")
    versions = {
        v.number: v
        for v in WorkflowVersion.objects.filter(
            organization_id=organization_id, definition_id=workflow_id, number__in=[from_version, to_version]
        )
    }
    if from_version not in versions and to_version not in versions:
        raise NotFound("Workflow not found.")
    errors = {}
    if from_version not in versions:
        errors["from_version"] = ["No such version of this workflow."]
    if to_version not in versions or versions[to_version].status != VersionStatus.PUBLISHED:
        errors["to_version"] = ["Must be the workflow's published version."]
    if from_version == to_version:
        errors["to_version"] = ["Must differ from from_version."]
    if errors:
        raise ValidationFailed(details=errors)
    target = versions[to_version]
    ids = Request.objects.filter(
        organization_id=organization_id, workflow_version=versions[from_version], status="pending"
    )
    if request_ids is not None:
        ids = ids.filter(pk__in=request_ids)
    batch = list(ids.order_by("created_at", "pk").values_list("pk", flat=True)[: MIGRATE_MAX_REQUESTS + 1])
    remaining = 0
    if len(batch) > MIGRATE_MAX_REQUESTS:
        batch = batch[:MIGRATE_MAX_REQUESTS]
        remaining = ids.count() - MIGRATE_MAX_REQUESTS
    results = []
    for request_id in batch:
        outbox = Outbox(actor=actor)
        with transaction.atomic():
            request = lock_request(organization_id=organization_id, pk=request_id)
            if request.status != "pending" or request.workflow_version_id != versions[from_version].pk:
                continue  # moved on meanwhile
            if dry_run:
                results.append(plan(request, target, restart=restart))
                continue
            results.append(do_migrate(request, target, restart=restart, outbox=outbox))
            outbox.flush()
    return {"results": results, "remaining": remaining}
