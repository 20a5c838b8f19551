"""Definitions as code: one JSON document per workflow; export -> import -> export is byte-identical."""

from __future__ import annotations

import json

from django.db import transaction

from core.exceptions import NotFound, ValidationFailed
from workflows import selectors, services
from workflows.models import ResubmitPolicy, VersionStatus, WorkflowDefinition, WorkflowVersion
from workflows.validation import STEP_FIELDS, validate_version

FORMAT = 1
DEFINITION_KEYS = ["key", "name", "description", "category", "reference_prefix", "resubmit_policy"]


def export_document(*, organization, key: str) -> dict:
    """The published version (or the draft when nothing is published) of a workflow, as a document."""
    definition = selectors.definition_get(organization=organization, workflow=key)
    version = selectors.published_for(definition=definition) or selectors.draft_for(definition=definition)
    if version is None:  # pragma: no cover - every definition has a version
        raise NotFound("This workflow has no version to export.")
    return {
        "format": FORMAT,
        **{k: getattr(definition, k) for k in DEFINITION_KEYS},
        **services.version_as_dict(version),
    }


def _identical(definition: WorkflowDefinition, version: WorkflowVersion, attrs: dict, content: dict) -> bool:
    """Would importing change nothing? The document's content is normalized (and validated) as a save would."""
    if any(getattr(definition, k) != v for k, v in attrs.items()):
        return False
    steps = validate_version(organization=definition.organization, **content)
    steps = sorted(steps, key=lambda s: (s["stage"], s["position"], s["name"]))
    normalized = {**content, "steps": [{f: s[f] for f in STEP_FIELDS} for s in steps]}
    return normalized == services.version_as_dict(version)


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@transaction.atomic
def import_document(*, organization, actor, document: dict, publish: bool = False) -> tuple[WorkflowDefinition, str]:
    """Create the workflow or replace its draft; optionally publish. Returns (definition, what happened)."""
    if not isinstance(document, dict):
        raise ValidationFailed(details={"document": ["Must be a JSON object."]})
    if document.get("format", FORMAT) != FORMAT:
        raise ValidationFailed(
            details={"format": [f"Unsupported format {document.get('format')!r}; expected {FORMAT}."]}
        )
    unknown = set(document) - {"format", *DEFINITION_KEYS, "form_schema", "distinct_approvers", "steps"}
    if unknown:
        raise ValidationFailed(details={k: ["Unknown key."] for k in sorted(unknown)})
    key = document.get("key")
    if not key or not isinstance(key, str):
        raise ValidationFailed(details={"key": ["This field is required."]})
    content = {
        "form_schema": document.get("form_schema", {"type": "object", "properties": {}}),
        "distinct_approvers": document.get("distinct_approvers", False),
        "steps": document.get("steps", []),
    }
    attrs = {k: document.get(k, "") for k in ["name", "description", "category", "reference_prefix"]}
    attrs["resubmit_policy"] = document.get("resubmit_policy", ResubmitPolicy.RESTART_IF_CHANGED)
    definition = selectors.definitions_for(organization=organization).filter(key=key).first()
    current = definition and (
        selectors.draft_for(definition=definition) or selectors.published_for(definition=definition)
    )
    if current is not None and _identical(definition, current, attrs, content):
        if publish and current.status == VersionStatus.DRAFT:
            services.version_publish(actor=actor, version=current)
            return definition, f"identical to draft version {current.number}, published it"
        return definition, f"unchanged: identical to {current.status} version {current.number}, nothing imported"
    if definition is None:
        definition = services.workflow_create(actor=actor, organization=organization, key=key, **attrs, **content)
        what = "created"
    else:
        services.workflow_update(actor=actor, definition=definition, **attrs)
        services.draft_save(actor=actor, definition=definition, **content)
        what = "draft updated"
    if publish:
        draft = selectors.draft_for(definition=definition)
        services.version_publish(actor=actor, version=draft)
        what += ", published"
    return definition, what
