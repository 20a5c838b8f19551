"""Published workflow versions kept in process, by id, with their steps.

A published (or retired) version's route and form never change: the service refuses it and, on
PostgreSQL, triggers refuse any write to its steps and any change but ``published -> retired`` to
the version row (workflows migration 0002). So a version, once read, serves every later request
that runs on it without another query (issue 14: the decision's lock-and-load joined two tables
less). ``status`` is the one field that may be stale here (a retirement after the read): read
the row when that matters. Drafts are never kept.
"""

from __future__ import annotations

import copy

from django.db.models import Prefetch

from core.exceptions import NotFound
from workflows.models import Step, VersionStatus, WorkflowVersion

_VERSIONS: dict = {}
_MAX = 2048


def published_version(version_id, *, organization_id) -> WorkflowVersion:
    """The organization's version ``version_id`` with its steps prefetched (a copy: callers may set
    attributes); NotFound when it is not that organization's."""
    version = _VERSIONS.get(version_id)
    if version is None:
        try:
            version = WorkflowVersion.objects.prefetch_related(
                Prefetch("steps", queryset=Step.objects.order_by("stage", "position", "name"))
            ).get(pk=version_id, organization_id=organization_id)
        except WorkflowVersion.DoesNotExist:
            raise NotFound("Workflow not found or not published.") from None
        if version.status == VersionStatus.DRAFT:
            return version
        if len(_VERSIONS) >= _MAX:
            _VERSIONS.clear()
        _VERSIONS[version_id] = version
    elif version.organization_id != organization_id:
        raise NotFound("Workflow not found or not published.")
    return copy.copy(version)
