"""Every write to workflow definitions and versions.

Rules enforced here (and nowhere else):
- a version that is not a draft is immutable: the row is locked and its status re-read from the
  database before any change (and a PostgreSQL trigger refuses changes that bypass this module);
- editing a published workflow means a new draft copied from it (next number);
- publishing retires the previously published version, in the same transaction;
- definitions are never hard-deleted (soft delete or deactivate).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from auditlogs.services import audit_record
from core.exceptions import Conflict, ValidationFailed
from workflows.models import ResubmitPolicy, Step, VersionStatus, WorkflowDefinition, WorkflowVersion
from workflows.validation import STEP_FIELDS, validate_version

DEFINITION_FIELDS = ["name", "description", "category", "is_active", "reference_prefix", "resubmit_policy"]


class VersionImmutable(Conflict):
    code = "version_immutable"
    default_message = "Only a draft version can be changed; published and retired versions are immutable."


def _lock_definition(definition: WorkflowDefinition) -> WorkflowDefinition:
    return WorkflowDefinition.all_objects.select_for_update().get(pk=definition.pk)


def _lock_version(version: WorkflowVersion) -> WorkflowVersion:
    return WorkflowVersion.objects.select_for_update().get(pk=version.pk)


def version_as_dict(version: WorkflowVersion) -> dict[str, Any]:
    """The content of a version: what is copied to a new draft and what is exported."""
    steps = sorted(version.steps.all(), key=lambda s: (s.stage, s.position, s.name))
    return {
        "form_schema": version.form_schema,
        "distinct_approvers": version.distinct_approvers,
        "steps": [{f: getattr(s, f) for f in STEP_FIELDS} for s in steps],
    }


def _write_steps(version: WorkflowVersion, steps: list[dict]) -> None:
    Step.objects.filter(version=version).delete()
    Step.objects.bulk_create([Step(version=version, **{f: s[f] for f in STEP_FIELDS}) for s in steps])


def _validate_definition_fields(fields: dict) -> None:
    errors = {}
    if "name" in fields and not str(fields["name"] or "").strip():
        errors["name"] = ["This field is required."]
    if "is_active" in fields and not isinstance(fields["is_active"], bool):
        errors["is_active"] = ["Must be true or false."]
    if "resubmit_policy" in fields and fields["resubmit_policy"] not in ResubmitPolicy.values:
        errors["resubmit_policy"] = [f"Must be one of {', '.join(ResubmitPolicy.values)}."]
    if errors:
        raise ValidationFailed(details=errors)


@transaction.atomic
def workflow_create(
    *,
    actor,
    organization,
    key: str,
    name: str,
    description: str = "",
    category: str = "",
    is_active: bool = True,
    reference_prefix: str = "",
    resubmit_policy: str = ResubmitPolicy.RESTART_IF_CHANGED,
    form_schema: dict | None = None,
    distinct_approvers: bool = False,
    steps: list | None = None,
) -> WorkflowDefinition:
    """A definition and its draft version 1 (validated like any draft)."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_slug

    try:
        validate_slug(key or "")
    except ValidationError:
        raise ValidationFailed(details={"key": ["Use letters, digits, hyphens and underscores."]}) from None
    _validate_definition_fields({"name": name, "is_active": is_active, "resubmit_policy": resubmit_policy})
    form_schema = {"type": "object", "properties": {}} if form_schema is None else form_schema
    normalized = validate_version(
        organization=organization, form_schema=form_schema, steps=steps or [], distinct_approvers=distinct_approvers
    )
    if WorkflowDefinition.objects.for_organization(organization).filter(key=key).exists():
        raise ValidationFailed(details={"key": [f"A workflow with key {key!r} already exists."]})
    try:
        with transaction.atomic():
            definition = WorkflowDefinition.objects.create(
                organization=organization,
                key=key,
                name=name.strip(),
                description=description or "",
                category=category or "",
                is_active=is_active,
                reference_prefix=reference_prefix or key[:3].upper(),
                resubmit_policy=resubmit_policy,
                created_by=actor,
            )
    except IntegrityError:
        raise ValidationFailed(details={"key": [f"A workflow with key {key!r} already exists."]}) from None
    version = WorkflowVersion.objects.create(
        organization=organization,
        definition=definition,
        number=1,
        status=VersionStatus.DRAFT,
        form_schema=form_schema,
        distinct_approvers=distinct_approvers,
        created_by=actor,
    )
    _write_steps(version, normalized)
    audit_record(
        action="workflow.created",
        actor=actor,
        organization=organization,
        target=definition,
        changes={"key": key, "name": definition.name, "draft": 1, "steps": len(normalized)},
    )
    return definition


@transaction.atomic
def workflow_update(*, actor, definition: WorkflowDefinition, **fields) -> WorkflowDefinition:
    """Definition attributes only (name, description, category, is_active, reference_prefix,
    resubmit_policy); the key is fixed."""
    unknown = set(fields) - set(DEFINITION_FIELDS)
    if unknown:
        raise ValidationFailed(details={f: ["This field cannot be changed here."] for f in sorted(unknown)})
    _validate_definition_fields(fields)
    definition = _lock_definition(definition)
    changes = {}
    for field, value in fields.items():
        if getattr(definition, field) != value:
            changes[field] = [getattr(definition, field), value]
            setattr(definition, field, value)
    if changes:
        definition.save(update_fields=[*changes, "updated_at"])
        audit_record(
            action="workflow.updated",
            actor=actor,
            organization=definition.organization_id,
            target=definition,
            changes=changes,
        )
    return definition


@transaction.atomic
def draft_save(
    *,
    actor,
    definition: WorkflowDefinition,
    form_schema: Any,
    steps: Any,
    distinct_approvers: Any = False,
    version: WorkflowVersion | None = None,
) -> WorkflowVersion:
    """Replace the draft's content (creating the next draft when there is none).

    ``version``, when given, must be that draft: saving a published or retired version raises VersionImmutable.
    """
    definition = _lock_definition(definition)
    if version is not None:
        locked = _lock_version(version)
        if locked.status != VersionStatus.DRAFT or locked.definition_id != definition.pk:
            raise VersionImmutable()
    normalized = validate_version(
        organization=definition.organization,
        form_schema=form_schema,
        steps=steps,
        distinct_approvers=distinct_approvers,
    )
    draft = (
        WorkflowVersion.objects.select_for_update().filter(definition=definition, status=VersionStatus.DRAFT).first()
    )
    created = draft is None
    if created:
        draft = WorkflowVersion.objects.create(
            organization_id=definition.organization_id,
            definition=definition,
            number=_next_number(definition),
            status=VersionStatus.DRAFT,
            form_schema=form_schema,
            distinct_approvers=distinct_approvers,
            created_by=actor,
        )
    else:
        draft.form_schema = form_schema
        draft.distinct_approvers = distinct_approvers
        draft.save(update_fields=["form_schema", "distinct_approvers", "updated_at"])
    _write_steps(draft, normalized)
    audit_record(
        action="workflow.updated",
        actor=actor,
        organization=definition.organization_id,
        target=definition,
        changes={"draft": draft.number, "created": created, "steps": len(normalized)},
    )
    return draft


def _next_number(definition: WorkflowDefinition) -> int:
    last = WorkflowVersion.objects.filter(definition=definition).order_by("-number").values_list("number", flat=True)
    return (last.first() or 0) + 1


@transaction.atomic
def draft_from_version(*, actor, version: WorkflowVersion) -> WorkflowVersion:
    """The next draft, copied from ``version`` (usually the published one). Conflict if a draft exists."""
    definition = _lock_definition(version.definition)
    existing = WorkflowVersion.objects.filter(definition=definition, status=VersionStatus.DRAFT).first()
    if existing is not None:
        raise Conflict(
            f"Version {existing.number} is already the draft of this workflow; edit it or publish it first.",
            code="draft_exists",
        )
    content = version_as_dict(version)
    draft = WorkflowVersion.objects.create(
        organization_id=definition.organization_id,
        definition=definition,
        number=_next_number(definition),
        status=VersionStatus.DRAFT,
        form_schema=content["form_schema"],
        distinct_approvers=content["distinct_approvers"],
        created_by=actor,
    )
    _write_steps(draft, content["steps"])
    audit_record(
        action="workflow.updated",
        actor=actor,
        organization=definition.organization_id,
        target=definition,
        changes={"draft": draft.number, "created": True, "copied_from": version.number},
    )
    return draft


@transaction.atomic
def version_publish(*, actor, version: WorkflowVersion) -> WorkflowVersion:
    """Draft -> published (validated again: roles and users may have changed); the previous one is retired."""
    definition = _lock_definition(version.definition)
    version = _lock_version(version)
    if version.status != VersionStatus.DRAFT:
        raise VersionImmutable(f"Version {version.number} is {version.status}; only a draft can be published.")
    content = version_as_dict(version)
    validate_version(organization=definition.organization, for_publish=True, **content)
    previous = (
        WorkflowVersion.objects.select_for_update()
        .filter(definition=definition, status=VersionStatus.PUBLISHED)
        .first()
    )
    now = timezone.now()
    if previous is not None:
        previous.status = VersionStatus.RETIRED
        previous.save(update_fields=["status", "updated_at"])
    version.status = VersionStatus.PUBLISHED
    version.published_at = now
    version.published_by = actor
    version.save(update_fields=["status", "published_at", "published_by", "updated_at"])
    if previous is not None:
        audit_record(
            action="workflow.retired",
            actor=actor,
            organization=definition.organization_id,
            target=definition,
            changes={"version": previous.number, "status": [VersionStatus.PUBLISHED, VersionStatus.RETIRED]},
        )
    audit_record(
        action="workflow.published",
        actor=actor,
        organization=definition.organization_id,
        target=definition,
        changes={"version": version.number, "status": [VersionStatus.DRAFT, VersionStatus.PUBLISHED]},
    )
    return version


@transaction.atomic
def workflow_delete(*, actor, definition: WorkflowDefinition) -> None:
    """Soft delete (never a hard delete: requests pin its versions). The key becomes free again."""
    definition = _lock_definition(definition)
    if definition.deleted_at is not None:
        return
    definition.deleted_at = timezone.now()
    definition.is_active = False
    definition.save(update_fields=["deleted_at", "is_active", "updated_at"])
    audit_record(
        action="workflow.deleted",
        actor=actor,
        organization=definition.organization_id,
        target=definition,
        changes={"deleted_at": [None, definition.deleted_at]},
    )


@transaction.atomic
def workflow_restore(*, actor, definition: WorkflowDefinition) -> None:
    definition = _lock_definition(definition)
    if definition.deleted_at is None:
        return
    if WorkflowDefinition.objects.filter(organization_id=definition.organization_id, key=definition.key).exists():
        raise Conflict(f"Another live workflow uses the key {definition.key!r}.", code="key_taken")
    before = definition.deleted_at
    definition.deleted_at = None
    definition.save(update_fields=["deleted_at", "updated_at"])
    audit_record(
        action="workflow.restored",
        actor=actor,
        organization=definition.organization_id,
        target=definition,
        changes={"deleted_at": [before, None]},
    )
