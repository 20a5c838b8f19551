"""Requests: create and edit, comments and attachments. Each is one transaction.

The status transitions (submit, withdraw, cancel, resubmit, decisions) are the lifecycle's:
``approvals.lifecycle.services``. Audit rows and notifications go through its ``Outbox``.
"""

from __future__ import annotations

import functools
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
from core.exceptions import Forbidden, NotFound, ValidationFailed
from core.ids import parse_uuid
from requests.models import Attachment, Comment, Request
from requests.validation import validate_form
from workflows.models import VersionStatus, WorkflowDefinition, WorkflowVersion
from workflows.selectors import pinned_version, published_version_for


def _prefix(definition: WorkflowDefinition) -> str:
    prefix = definition.reference_prefix or re.sub(r"[^A-Za-z0-9]", "", definition.key)[:8]
    return (prefix or "REQ").upper()


def _next_reference(definition: WorkflowDefinition) -> str:
    """``PUR-000042``: the definition's counter, incremented in the database under its row lock.

    References are unique per organization; should two workflows share a prefix, numbers
    already taken are skipped.
    """
    prefix = _prefix(definition)
    qs = WorkflowDefinition.all_objects.filter(pk=definition.pk)
    while True:
        qs.update(reference_counter=F("reference_counter") + 1)  # takes the row lock until commit
        reference = f"{prefix}-{qs.values_list('reference_counter', flat=True)[0]:06d}"
        if not Request.all_objects.filter(organization_id=definition.organization_id, reference=reference).exists():
            return reference


# Raw SQL because it pays (issue 14, the create+submit profile): the published version's lookup
# (workflow by key or id: a live, active definition and its published version), the counter's
# increment, reading the new value back and the "already taken?" check were four statements on
# every create, the first an ORM query whose compiling cost ~2 ms of CPU; this one statement does
# them all, and returns the definition's row (it changes) and the version's id (its row does not:
# ``workflows.selectors.pinned_version`` keeps it in process). The prefix is built in SQL as
# ``_prefix`` does, the reference as ``f"{prefix}-{n:06d}"``.
_TAKE_REFERENCE_SQL = """
UPDATE {definition} d SET reference_counter = d.reference_counter + 1
FROM {version} v
WHERE d.organization_id = %(organization)s AND d.{match} = %(workflow)s AND d.deleted_at IS NULL AND d.is_active
  AND v.organization_id = %(organization)s AND v.definition_id = d.id AND v.status = %(published)s
RETURNING v.id, {columns}, {prefix}, EXISTS (
    SELECT 1 FROM {request} r WHERE r.organization_id = %(organization)s AND r.reference = {prefix} || '-' || CASE
        WHEN d.reference_counter < 1000000 THEN lpad(d.reference_counter::text, 6, '0')
        ELSE d.reference_counter::text END
)
"""
_SQL_PREFIX = (
    "upper(coalesce(nullif(d.reference_prefix, ''), "
    "nullif(left(regexp_replace(d.key, '[^A-Za-z0-9]', '', 'g'), 8), ''), 'REQ'))"
)


@functools.cache
def _take_reference_sql(match: str) -> tuple[str, list[str]]:
    quote = connection.ops.quote_name
    fields = [f.attname for f in WorkflowDefinition._meta.concrete_fields]
    sql = _TAKE_REFERENCE_SQL.format(
        definition=quote(WorkflowDefinition._meta.db_table),
        version=quote(WorkflowVersion._meta.db_table),
        request=quote(Request._meta.db_table),
        match=quote(match),
        columns=", ".join(f"d.{quote(WorkflowDefinition._meta.get_field(f).column)}" for f in fields),
        prefix=_SQL_PREFIX,
    )
    return sql, fields


def _version_and_reference(organization, workflow) -> tuple[WorkflowVersion, str]:
    """The published version of ``workflow`` (key or id) and the next reference of its definition,
    whose row stays locked until commit. NotFound as ``published_version_for``."""
    if connection.vendor != "postgresql":
        version = published_version_for(organization=organization, workflow=workflow, with_steps=False)
        return version, _next_reference(version.definition)
    if isinstance(workflow, WorkflowDefinition):
        workflow = workflow.pk
    pk = parse_uuid(workflow)
    sql, fields = _take_reference_sql("id" if pk else "key")
    params = {"organization": organization.pk, "workflow": pk or str(workflow), "published": VersionStatus.PUBLISHED}
    with connection.cursor() as cursor:
        while True:  # the row lock is held until commit from the first UPDATE on
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row is None:
                raise NotFound("Workflow not found or not published.")
            definition = WorkflowDefinition.from_db(connection.alias, fields, row[1:-2])
            prefix, taken = _prefix(definition), row[-1]
            reference = f"{prefix}-{definition.reference_counter:06d}"
            if prefix != row[-2]:  # a prefix SQL's upper() spells otherwise than Python's: check it here
                taken = Request.all_objects.filter(organization_id=organization.pk, reference=reference).exists()
            if not taken:
                break
    version = pinned_version(organization_id=organization.pk, version_id=row[0], definition=definition)
    return version, reference


def request_create(*, actor, workflow, title: str, data: dict, submit: bool = False) -> Request:
    if not actor.has_code(REQUESTS_CREATE):
        raise Forbidden("You may not create requests.")
    outbox = ev.Outbox(actor=actor, defer_writes=True)  # flushed right after do_submit
    with transaction.atomic():  # a refused request gives its reference back (rolled back)
        version, reference = _version_and_reference(actor.organization, workflow)
        title = (title or "").strip()
        if not title:
            raise ValidationFailed(details={"title": ["This field is required."]})
        data = {} if data is None else data
        validate_form(version.form_schema, data, partial=not submit)
        request = Request.objects.create(
            organization=actor.organization,
            workflow_version=version,
            definition=version.definition,
            requester=actor,
            department_id=actor.department_id,
            title=title[:300],
            data=data,
            reference=reference,
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
