"""Request transitions. Each is one transaction that locks the request row first, then decides.

The audit rows and notifications of a transition are collected in an ``Effects`` and written
by ``effects.flush()`` as the last statement of the transaction (the one hook per transition).
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.catalog import REQUESTS_CANCEL_ANY, REQUESTS_CREATE
from approvals import engine, routing
from approvals.models import Assignment, TaskStatus
from core.exceptions import Forbidden, InvalidTransition, NotFound, ValidationFailed
from notifications.models import Kind
from requests import selectors
from requests.locks import lock_request
from requests.models import Attachment, Comment, Request, RequestStatus
from requests.validation import validate_form
from workflows.models import WorkflowDefinition
from workflows.selectors import published_version_for

EDITABLE = (RequestStatus.DRAFT, RequestStatus.CHANGES_REQUESTED)
WITHDRAWABLE = (RequestStatus.DRAFT, RequestStatus.PENDING, RequestStatus.CHANGES_REQUESTED)
CANCELLABLE = (RequestStatus.PENDING, RequestStatus.CHANGES_REQUESTED)


def _invalid(request: Request, action: str) -> InvalidTransition:
    return InvalidTransition(
        f"Cannot {action} a request that is {request.status}.",
        details={"status": [request.status]},
    )


def _locked_for(actor, request_id) -> Request:
    """Lock the request, then check the actor may see it (404 otherwise, as if it did not exist)."""
    try:
        uuid.UUID(str(request_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound("Request not found.") from None
    request = lock_request(request_id)
    if actor is not None and (
        request.organization_id != actor.organization_id or not selectors.can_view(user=actor, request=request)
    ):
        raise NotFound("Request not found.")
    return request


def _require_requester(actor, request: Request, action: str) -> None:
    if actor is None or request.requester_id != actor.pk:
        raise Forbidden(f"Only the requester can {action} this request.")


def _prefix(definition: WorkflowDefinition) -> str:
    prefix = definition.reference_prefix or re.sub(r"[^A-Za-z0-9]", "", definition.key)[:8]
    return (prefix or "REQ").upper()


def _next_reference(definition: WorkflowDefinition) -> str:
    """``PUR-000042``: the definition's counter, incremented in the database under its row lock.

    References are unique per organization; should two workflows share a prefix, numbers
    already taken are skipped.
    """
    qs = WorkflowDefinition.all_objects.filter(pk=definition.pk)
    while True:
        qs.update(reference_counter=F("reference_counter") + 1)  # takes the row lock until commit
        reference = f"{_prefix(definition)}-{qs.values_list('reference_counter', flat=True)[0]:06d}"
        if not Request.all_objects.filter(organization_id=definition.organization_id, reference=reference).exists():
            return reference


def _submit(request: Request, actor, effects: engine.Effects) -> None:
    validate_form(request.workflow_version.form_schema, request.data)
    before = request.status
    request.status = RequestStatus.PENDING
    request.submitted_at = timezone.now()
    request.department_id = request.requester.department_id
    request.save(update_fields=["status", "submitted_at", "department", "updated_at"])
    effects.audit("request.submitted", request, {"status": [before, RequestStatus.PENDING], "round": request.round})
    effects.notify(
        request.requester,
        Kind.REQUEST_SUBMITTED,
        f"{request.reference} was submitted",
        body=request.title,
        request=request,
    )
    engine.activate_from(request, stage=0, effects=effects)


def request_create(*, actor, workflow, title: str, data: dict, submit: bool = False) -> Request:
    if not actor.has_code(REQUESTS_CREATE):
        raise Forbidden("You may not create requests.")
    version = published_version_for(organization=actor.organization, workflow=workflow)
    title = (title or "").strip()
    if not title:
        raise ValidationFailed(details={"title": ["This field is required."]})
    data = {} if data is None else data
    validate_form(version.form_schema, data, partial=not submit)
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = Request.objects.create(
            organization_id=actor.organization_id,
            workflow_version=version,
            definition=version.definition,
            requester=actor,
            department_id=actor.department_id,
            title=title[:300],
            data=data,
            reference=_next_reference(version.definition),
        )
        request = lock_request(request.pk)
        effects.audit(
            "request.created",
            request,
            {"reference": request.reference, "workflow": version.definition.key, "version": version.number},
        )
        if submit:
            _submit(request, actor, effects)
        effects.flush()
    return request


def request_update(*, actor, request_id, title: str | None = None, data: dict | None = None) -> Request:
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = _locked_for(actor, request_id)
        _require_requester(actor, request, "edit")
        if request.status not in EDITABLE:
            raise _invalid(request, "edit")
        changes = {}
        if title is not None:
            title = title.strip()
            if not title:
                raise ValidationFailed(details={"title": ["This field may not be blank."]})
            if title != request.title:
                changes["title"] = [request.title, title]
                request.title = title[:300]
        if data is not None:
            validate_form(request.workflow_version.form_schema, data, partial=True)
            if data != request.data:
                changes["data"] = [request.data, data]
                request.data = data
        if changes:
            request.save(update_fields=["title", "data", "updated_at"])
            effects.audit("request.updated", request, changes)
        effects.flush()
    return request


def request_submit(*, actor, request_id) -> Request:
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = _locked_for(actor, request_id)
        _require_requester(actor, request, "submit")
        if request.status != RequestStatus.DRAFT:
            raise _invalid(request, "submit")
        _submit(request, actor, effects)
        effects.flush()
    return request


def request_withdraw(*, actor, request_id) -> Request:
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = _locked_for(actor, request_id)
        _require_requester(actor, request, "withdraw")
        if request.status not in WITHDRAWABLE:
            raise _invalid(request, "withdraw")
        engine.close_request(request, RequestStatus.WITHDRAWN, effects)
        effects.flush()
    return request


def request_cancel(*, actor, request_id, reason: str = "") -> Request:
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = _locked_for(actor, request_id)
        if actor is not None and not actor.has_code(REQUESTS_CANCEL_ANY):
            raise Forbidden("Cancelling needs the requests.cancel_any permission.")
        if request.status not in CANCELLABLE:
            raise _invalid(request, "cancel")
        engine.close_request(request, RequestStatus.CANCELLED, effects, comment=reason)
        effects.flush()
    return request


def resume_stage(request: Request) -> tuple[int, bool]:
    """(stage to start at, restarted) for a resubmission (DESIGN §3).

    Resume at the stage that asked for changes, unless the (new) data changes which steps
    of the earlier stages apply (conditions evaluated anew): then restart at stage 1.
    """
    returned = request.returned_from_stage
    if not returned:
        return 0, True
    earlier = {s.stage for s in routing.steps_of(request.workflow_version) if s.stage < returned}
    if not earlier:
        return returned, False
    standing = engine.standing_tasks(request)
    applied_before = {
        step_id for step_id, task in standing.items() if task.stage < returned and task.status != TaskStatus.SKIPPED
    }
    applies_now = routing.applicable_step_ids(
        request.workflow_version, stages=earlier, requester=request.requester, data=request.data
    )
    if applied_before != applies_now:
        return 0, True
    return returned, False


def request_resubmit(*, actor, request_id, data: dict | None = None, title: str | None = None) -> Request:
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = _locked_for(actor, request_id)
        _require_requester(actor, request, "resubmit")
        if request.status != RequestStatus.CHANGES_REQUESTED:
            raise _invalid(request, "resubmit")
        changes: dict = {}
        if title is not None and title.strip() and title.strip() != request.title:
            changes["title"] = [request.title, title.strip()]
            request.title = title.strip()[:300]
        if data is not None and data != request.data:
            changes["data"] = [request.data, data]
            request.data = data
        validate_form(request.workflow_version.form_schema, request.data)
        stage, restarted = resume_stage(request)
        before_round = request.round
        request.round = before_round + 1
        request.status = RequestStatus.PENDING
        request.returned_from_stage = None
        request.submitted_at = timezone.now()
        request.save()
        changes.update(
            {
                "status": [RequestStatus.CHANGES_REQUESTED, RequestStatus.PENDING],
                "round": [before_round, request.round],
                "restarted": restarted,
                "resume_stage": stage or None,
            }
        )
        effects.audit("request.resubmitted", request, changes)
        engine.activate_from(request, stage=stage, effects=effects)
        effects.flush()
    return request


# --- comments and attachments ---------------------------------------------------------------


def participants(request: Request) -> list:
    """Requester and everyone ever assigned (or acted for) on the request."""
    users = {request.requester_id: request.requester}
    for a in Assignment.objects.filter(task__request=request).select_related("assignee", "on_behalf_of"):
        users.setdefault(a.assignee_id, a.assignee)
        if a.on_behalf_of_id:
            users.setdefault(a.on_behalf_of_id, a.on_behalf_of)
    return [u for u in users.values() if u.is_active]


def comment_add(*, actor, request_id, body: str) -> Comment:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed(details={"body": ["This field is required."]})
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = _locked_for(actor, request_id)
        comment = Comment.objects.create(
            organization_id=request.organization_id, request=request, author=actor, body=body, round=request.round
        )
        for user in participants(request):
            if user.pk != actor.pk:
                effects.notify(
                    user,
                    Kind.REQUEST_COMMENTED,
                    f"{actor.get_full_name()} commented on {request.reference}",
                    body=body[:500],
                    request=request,
                    data={"comment": str(comment.pk)},
                )
        effects.audit("comment.added", comment, {"request": str(request.pk), "body": body})
        effects.flush()
    return comment


DEFAULT_ALLOWED_TYPES = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/zip",
)


def allowed_types() -> tuple[str, ...]:
    return tuple(getattr(settings, "ATTACHMENT_ALLOWED_TYPES", DEFAULT_ALLOWED_TYPES))


def sanitize_filename(name: str) -> str:
    """A display name safe in headers and on disks: no path, no control or odd characters."""
    name = unicodedata.normalize("NFKC", os.path.basename((name or "").replace("\\", "/")))
    name = re.sub(r"[^\w.\- ()]+", "_", name, flags=re.UNICODE).strip(" .")
    name = re.sub(r"_+", "_", name)
    if not name:
        name = "file"
    stem, ext = os.path.splitext(name)
    return stem[: 200 - len(ext[:20])] + ext[:20]


def attachment_add(*, actor, request_id, file) -> Attachment:
    max_bytes = settings.ATTACHMENT_MAX_BYTES
    content_type = (getattr(file, "content_type", "") or "").split(";")[0].strip().lower()
    if file is None:
        raise ValidationFailed(details={"file": ["No file was submitted."]})
    if file.size > max_bytes:
        raise ValidationFailed(details={"file": [f"The file is larger than {max_bytes} bytes."]})
    if file.size == 0:
        raise ValidationFailed(details={"file": ["The file is empty."]})
    if content_type not in allowed_types():
        raise ValidationFailed(details={"file": [f"Files of type {content_type or 'unknown'} are not accepted."]})
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    effects = engine.Effects(actor=actor)
    with transaction.atomic():
        request = _locked_for(actor, request_id)
        attachment = Attachment(
            id=uuid.uuid4(),
            organization_id=request.organization_id,
            request=request,
            uploaded_by=actor,
            name=sanitize_filename(file.name),
            size=file.size,
            content_type=content_type,
            sha256=digest.hexdigest(),
        )
        # Stored through the configured storage (an S3 backend plugs in); the stored name is ours.
        attachment.file.save(str(attachment.id), file, save=False)
        try:
            attachment.save(force_insert=True)
            effects.audit(
                "attachment.added",
                attachment,
                {
                    "request": str(request.pk),
                    "name": attachment.name,
                    "size": attachment.size,
                    "content_type": content_type,
                    "sha256": attachment.sha256,
                },
            )
            effects.flush()
        except Exception:
            attachment.file.delete(save=False)
            raise
    return attachment
