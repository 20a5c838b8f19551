"""Where a resubmitted request starts again."""

from __future__ import annotations

from approvals import routing
from approvals.lifecycle.engine import standing_tasks
from approvals.models import TaskStatus
from requests.models import Request


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
    standing = standing_tasks(request)
    applied_before = {
        step_id for step_id, task in standing.items() if task.stage < returned and task.status != TaskStatus.SKIPPED
    }
    applies_now = routing.applicable_step_ids(
        request.workflow_version, stages=earlier, requester=request.requester, data=request.data
    )
    if applied_before != applies_now:
        return 0, True
    return returned, False
