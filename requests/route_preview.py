"""The preview-route service: the route a request with this data would take, nothing created.

Used by ``POST /api/v1/requests/preview-route/`` (the published version, the caller as requester)
and by the admin builder's Simulate panel (any version of the designer's organization, a chosen
requester).
"""

from __future__ import annotations

from approvals import routing
from requests.validation import form_errors


def approver_json(a: routing.Approver) -> dict:
    return {
        "user": str(a.user.pk),
        "email": a.user.email,
        "name": a.user.get_full_name(),
        "on_behalf_of": str(a.on_behalf_of.pk) if a.on_behalf_of else None,
        "reason": a.reason,
    }


def route_preview(*, version, requester, data: dict) -> dict:
    stages = []
    for plan in routing.plan_route(version=version, requester=requester, data=data):
        stages.append(
            {
                "stage": plan.stage,
                "skipped": plan.skipped,
                "steps": [
                    {
                        "id": str(p.step.pk),
                        "name": p.step.name,
                        "mode": p.step.mode,
                        "quorum_count": p.step.quorum_count,
                        "condition": p.step.condition,
                        "skipped": not p.applies,
                        "skip_reason": p.skip_reason,
                        "condition_error": p.condition_error,
                        "fallback_reason": p.fallback_reason,
                        "approvers": [approver_json(a) for a in p.approvers],
                    }
                    for p in plan.steps
                ],
            }
        )
    return {
        "workflow": version.definition.key,
        "version": version.number,
        "data_errors": form_errors(version.form_schema, data),
        "stages": stages,
        "approved_without_approvers": all(st["skipped"] for st in stages),
    }
