"""Reads of workflow definitions and versions, always scoped to one organization."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from core.exceptions import NotFound
from core.ids import parse_uuid
from workflows.models import Step, VersionStatus, WorkflowDefinition, WorkflowVersion
from workflows.published import published_version


def definitions_for(*, organization) -> QuerySet[WorkflowDefinition]:
    """Live (not soft-deleted) definitions of the organization."""
    return WorkflowDefinition.objects.for_organization(organization)


def definition_get(*, organization, workflow) -> WorkflowDefinition:
    """A live definition by id or key; other orgs and unknown ones raise NotFound."""
    qs = definitions_for(organization=organization)
    if isinstance(workflow, WorkflowDefinition):
        workflow = workflow.pk
    pk = parse_uuid(workflow)
    definition = qs.filter(pk=pk).first() if pk else qs.filter(key=str(workflow)).first()
    if definition is None:
        raise NotFound("Workflow not found.")
    return definition


def _steps_prefetch() -> Prefetch:
    return Prefetch("steps", queryset=Step.objects.order_by("stage", "position", "name"))


def published_version_for(*, organization, workflow, with_steps: bool = True) -> WorkflowVersion:
    """The published version of a live, active definition (by key or id), with its steps prefetched
    unless ``with_steps`` is False (the request's route reads them from ``approvals.routing``'s
    per-version cache: a published version's steps never change)."""
    if isinstance(workflow, WorkflowDefinition):
        workflow = workflow.pk
    qs = (
        WorkflowVersion.objects.for_organization(organization)
        .filter(
            status=VersionStatus.PUBLISHED,
            definition__deleted_at__isnull=True,
            definition__is_active=True,
        )
        .select_related("definition")
    )
    if with_steps:
        qs = qs.prefetch_related(_steps_prefetch())
    pk = parse_uuid(workflow)
    version = qs.filter(definition_id=pk).first() if pk else qs.filter(definition__key=str(workflow)).first()
    if version is None:
        raise NotFound("Workflow not found or not published.")
    return version


def pinned_version(*, organization_id, version_id, definition: WorkflowDefinition) -> WorkflowVersion:
    """Version ``version_id``, which the caller has just read as its definition's published one, with
    ``definition`` (read with it: a definition's row does change) as its definition; the version's
    row comes from the process's published versions (``workflows.published``, no query once read)."""
    version = published_version(version_id, organization_id=organization_id)
    version.definition = definition  # a copy: its related-object cache is this caller's
    return version


def versions_for(*, definition) -> QuerySet[WorkflowVersion]:
    return (
        WorkflowVersion.objects.filter(definition=definition)
        .select_related("published_by", "created_by")
        .prefetch_related(_steps_prefetch())
        .order_by("-number")
    )


def draft_for(*, definition) -> WorkflowVersion | None:
    return versions_for(definition=definition).filter(status=VersionStatus.DRAFT).first()


def published_for(*, definition) -> WorkflowVersion | None:
    return versions_for(definition=definition).filter(status=VersionStatus.PUBLISHED).first()


def organization_slugs_with_workflow(*, key: str) -> list[str]:
    """Slugs of the organizations that have a live workflow ``key``: across tenants, for operator commands only."""
    return list(
        WorkflowDefinition.objects.filter(key=key, deleted_at__isnull=True)
        .order_by("organization__slug")
        .values_list("organization__slug", flat=True)
    )


# --- the admin builder -------------------------------------------------------------------------

PEOPLE_SHOWN = 3


def role_people(*, organization, slugs) -> dict[str, tuple[list[str], int]]:
    """slug -> (the first few active members' names, how many there are), in one query."""
    from accounts.models import RoleMembership

    found: dict[str, list[str]] = {slug: [] for slug in slugs}
    rows = (
        RoleMembership.objects.for_organization(organization)
        .filter(role__slug__in=list(found), user__is_active=True)
        .order_by("role__slug", "user__last_name", "user__first_name", "user__email")
        .values_list("role__slug", "user__first_name", "user__last_name", "user__email")
    )
    for slug, first, last, email in rows:
        found[slug].append(f"{first} {last}".strip() or email)
    return {slug: (names[:PEOPLE_SHOWN], len(names)) for slug, names in found.items()}


def earlier_version_with_pending_requests(*, version: WorkflowVersion) -> int | None:
    """The number of the newest version before ``version`` that pending requests still run on
    (where a move of running requests to ``version`` starts from), or None."""
    return (
        WorkflowVersion.objects.filter(
            organization_id=version.organization_id,
            definition_id=version.definition_id,
            number__lt=version.number,
            requests__status="pending",
            requests__deleted_at__isnull=True,
        )
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


def running_requests_on(*, version: WorkflowVersion) -> int:
    """Requests still moving on ``version`` (they stay on it when another version is published)."""
    return version.requests.for_organization(version.organization_id).running().count()


def builder_choices(*, organization) -> dict[str, list[dict]]:
    """What the builder's autocompletes offer: active users, roles, departments."""
    from accounts.models import Role, User
    from organizations.models import Department

    users = (
        User.objects.for_organization(organization)
        .filter(is_active=True)
        .order_by("email")
        .values_list("email", "first_name", "last_name")[:500]
    )
    roles = Role.objects.for_organization(organization).order_by("slug").values_list("slug", "name")
    return {
        "users": [{"value": e, "label": f"{f} {last}".strip() or e} for e, f, last in users],
        "roles": [{"value": s, "label": n} for s, n in roles],
        "departments": [
            {"value": n}
            for n in Department.objects.for_organization(organization).order_by("name").values_list("name", flat=True)
        ],
    }
