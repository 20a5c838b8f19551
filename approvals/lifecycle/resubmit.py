"""Where a resubmitted request starts again: the workflow's ``resubmit_policy`` (docs/lifecycle.md).

- ``restart``: every stage is asked again;
- ``restart_if_changed`` (the default): resume at the stage that asked for changes only when the
  request's data is unchanged since the earlier stages decided; any change of ``data`` restarts;
- ``resume``: resume at that stage unless the data changes which earlier steps apply.

An approval given for one amount must not count for another: that is why the default restarts
on any change of data. The digest of the data is taken when the request is returned for changes
(``engine.data_digest``); the data cannot change while the earlier stages decide (only drafts and
returned requests are editable), so that digest is the data they decided on.
"""

from __future__ import annotations

from dataclasses import dataclass

from approvals import routing
from approvals.lifecycle.engine import data_digest, standing_tasks
from approvals.models import TaskStatus
from requests.models import Request
from workflows.models import ResubmitPolicy


@dataclass(frozen=True)
class Restart:
    """Where the new round starts: ``stage`` 0 means stage 1 (the first that applies)."""

    stage: int
    restarted: bool
    policy: str
    reason: str


def _earlier_steps_change(request: Request, returned: int) -> bool:
    """Would the current data change which steps of the earlier stages apply (conditions anew)?"""
    earlier = {s.stage for s in routing.steps_of(request.workflow_version) if s.stage < returned}
    if not earlier:
        return False
    applied_before = {
        step_id
        for step_id, task in standing_tasks(request).items()
        if task.stage < returned and task.status != TaskStatus.SKIPPED
    }
    applies_now = routing.applicable_step_ids(
        request.workflow_version, stages=earlier, requester=request.requester, data=request.data
    )
    return applied_before != applies_now


def restart_point(request: Request) -> Restart:
    """Where ``request`` (returned for changes, its new data already set) starts its next round, and why."""
    policy = request.definition.resubmit_policy or ResubmitPolicy.RESTART_IF_CHANGED
    returned = request.returned_from_stage
    if not returned:
        return Restart(0, True, policy, "no stage to resume at")
    if policy == ResubmitPolicy.RESTART:
        return Restart(0, True, policy, "the workflow asks every stage again on resubmission")
    if policy == ResubmitPolicy.RESTART_IF_CHANGED and data_digest(request.data) != request.returned_data_digest:
        return Restart(0, True, policy, "the data changed since the earlier stages decided")
    if _earlier_steps_change(request, returned):
        return Restart(0, True, policy, "the data changes which steps of the earlier stages apply")
    if policy == ResubmitPolicy.RESUME:
        return Restart(returned, False, policy, "the workflow resumes at the stage that asked for changes")
    return Restart(returned, False, policy, "the data is unchanged since the earlier stages decided")
