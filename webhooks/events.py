"""The event types endpoints may subscribe to (named as the audit actions) and their payloads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from auditlogs.chain import normalize

EVENT_TYPES = (
    "request.submitted",
    "request.approved",
    "request.rejected",
    "request.changes_requested",
    "request.withdrawn",
    "request.cancelled",
    "task.assigned",
    "task.approved",
    "task.rejected",
    "task.escalated",
    "comment.added",
)
ALL = "*"
TEST_EVENT = "webhook.test"


def _request_of(target) -> Any:
    label = target._meta.label_lower
    if label == "requests.request":
        return target
    return getattr(target, "request", None)


def data_for(*, action: str, target, actor, changes: dict | None) -> dict:
    """The ``data`` of an event: what changed, on which object, by whom (ids as strings)."""
    request = _request_of(target)
    data: dict[str, Any] = {
        "object": target._meta.model_name,
        "id": str(target.pk),
        "actor": {"id": str(actor.pk), "email": actor.email} if actor is not None and actor.pk else None,
        "changes": normalize(changes or {}),
    }
    if request is not None:
        data["request"] = {
            "id": str(request.pk),
            "reference": request.reference,
            "title": request.title,
            "status": request.status,
            "workflow": getattr(request.definition, "key", None),
        }
    if target._meta.label_lower == "approvals.approvaltask":
        data["task"] = {"id": str(target.pk), "step": target.step.name, "stage": target.stage, "status": target.status}
    return data


def payload(*, event_type: str, timestamp: dt.datetime, data: dict) -> dict:
    """The Standard Webhooks body: ``type``, ``timestamp`` (ISO 8601, UTC) and ``data``."""
    return {"type": event_type, "timestamp": timestamp.astimezone(dt.UTC).isoformat(), "data": data}
