"""Requests: create and edit, comments and attachments. Each is one transaction.

The status transitions (submit, withdraw, cancel, resubmit, decisions) are the lifecycle's:
``approvals.lifecycle.services``. Audit rows and notifications go through its ``Outbox``.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from accounts.catalog import REQUESTS_CREATE
from approvals.lifecycle import actions, checks
from approvals.lifecycle import events as ev
from approvals.lifecycle.services import locked_request_for
from approvals.lifecycle.transitions import check_request
from approvals.models import Assignment
from core.exceptions import Forbidden, ValidationFailed
from requests.models import Attachment, Comment, Request
from requests.validation import validate_form
from workflows.models import WorkflowDefinition
from workflows.selectors import published_version_for


def _prefix(definition: WorkflowDefinition) -> str:
    prefix = definition.reference_prefix or re.sub(r"[^A-Za-z0-9]", "", definition.key)[:8]
    return (prefix or "REQ").upper()


def _next_reference(definition: WorkflowDefinition) -> str:
    """``PUR-000042``: the definition's counter, incremented in the database under its row lock.

    References are unique per organization; should two workflows share a prefix, numbers
    already taken are skipped.
    """
    prefix = _prefix(definition)
    if connection.vendor == "postgresql":
        return _next_reference_pg(definition, prefix)
    qs = WorkflowDefinition.all_objects.filter(pk=definition.pk)
    while True:
        qs.update(reference_counter=F("reference_counter") + 1)  # takes the row lock until commit
        reference = f"{prefix}-{qs.values_list('reference_counter', flat=True)[0]:06d}"
        if not Request.all_objects.filter(organization_id=definition.organization_id, reference=reference).exists():
            return reference


# Raw SQL because it pays (issue 14, the create+submit profile): the increment, reading the new
# value back and the "already taken?" check were three statements on every create; RETURNING does
# all three in one. The reference is built in SQL exactly as ``f"{prefix}-{n:06d}"`` does.
_NEXT_REFERENCE_SQL = """
UPDATE {definition} SET reference_counter = reference_counter + 1 WHERE id = %s
RETURNING reference_counter, EXISTS (
    SELECT 1 FROM {request} WHERE organization_id = %s AND reference = %s || '-' || CASE
        WHEN reference_counter < 1000000 THEN lpad(reference_counter::text, 6, '0') ELSE reference_counter::text END
)
"""


def _next_reference_pg(definition: WorkflowDefinition, prefix: str) -> str:
    sql = _NEXT_REFERENCE_SQL.format(
        definition=connection.ops.quote_name(WorkflowDefinition._meta.db_table),
        request=connection.ops.quote_name(Request._meta.db_table),
    )
    with connection.cursor() as cursor:
        while True:  # the row lock is held until commit from the first UPDATE on
            cursor.execute(sql, [definition.pk, definition.organization_id, prefix])
            counter, taken = cursor.fetchone()
            if not taken:
                return f"{prefix}-{counter:06d}"


def request_create(*, actor, workflow, title: str, data: dict, submit: bool = False) -> Request:
    if not actor.has_code(REQUESTS_CREATE):
        raise Forbidden("You may not create requests.")
    version = published_version_for(organization=actor.organization, workflow=workflow, with_steps=False)
    title = (title or "").strip()
    if not title:
        raise ValidationFailed(details={"title": ["This field is required."]})
    data = {} if data is None else data
    validate_form(version.form_schema, data, partial=not submit)
    outbox = ev.Outbox(actor=actor, defer_writes=True)  # flushed right after do_submit
    with transaction.atomic():
        request = Request.objects.create(
            organization=actor.organization,
            workflow_version=version,
            definition=version.definition,
            requester=actor,
            department_id=actor.department_id,
            title=title[:300],
            data=data,
            reference=_next_reference(version.definition),
        )
        # No lock_request re-read (issue 14): a row inserted by this transaction is invisible to
        # every other one until commit, so nobody else can lock or change it, and the instance
        # already holds what a transition reads with it (version, definition, requester, organization).
        outbox.emit(
            ev.RequestCreated(
                request,
                {"reference": request.reference, "workflow": version.definition.key, "version": version.number},
            )
        )
        if submit:  # the data was validated in full above
            actions.do_submit(request, outbox=outbox)
        outbox.flush()
    return request


def request_update(*, actor, request_id, title: str | None = None, data: dict | None = None) -> Request:
    outbox = ev.Outbox(actor=actor)
    with transaction.atomic():
        request = locked_request_for(actor, request_id)
        checks.check_requester(actor, request, "edit")
        check_request(request, "edit")
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
            outbox.emit(ev.RequestUpdated(request, changes))
        outbox.flush()
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
    outbox = ev.Outbox(actor=actor)
    with transaction.atomic():
        request = locked_request_for(actor, request_id)
        comment = Comment.objects.create(
            organization_id=request.organization_id, request=request, author=actor, body=body, round=request.round
        )
        text = {"author": actor.get_full_name(), "message": body[:500]}
        outbox.emit(
            ev.CommentAdded(
                comment, {"request": str(request.pk), "body": body}, request=request, data={"comment": str(comment.pk)}
            ),
            *(ev.Notice(user, text) for user in participants(request) if user.pk != actor.pk),
        )
        outbox.flush()
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
    outbox = ev.Outbox(actor=actor)
    with transaction.atomic():
        request = locked_request_for(actor, request_id)
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
            outbox.emit(
                ev.AttachmentAdded(
                    attachment,
                    {
                        "request": str(request.pk),
                        "name": attachment.name,
                        "size": attachment.size,
                        "content_type": content_type,
                        "sha256": attachment.sha256,
                    },
                )
            )
            outbox.flush()
        except Exception:
            attachment.file.delete(save=False)
            raise
    return attachment


def requests_export_record(*, actor, fmt: str, filters: dict) -> None:
    """``requests.exported``: who exported which requests, and how. Committed before the stream starts."""
    from auditlogs.services import audit_record

    with transaction.atomic():
        audit_record(
            action="requests.exported",
            actor=actor,
            organization=actor.organization,
            target_type="requests.request",
            target_repr=f"request export ({fmt})",
            changes={"format": fmt, "filters": {k: v for k, v in filters.items() if v not in (None, "", [])}},
        )
