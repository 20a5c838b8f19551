"""Domain events of the request lifecycle, and the one map from each event to its effects.

A transition emits events into an ``Outbox``; ``outbox.flush()``, the last statement of the
transition's transaction, turns them into notification rows (one ``notify_many``) and audit
rows (one ``audit_records``, last: it holds the organization's chain lock until commit).
What leaves the process (WebSocket push, e-mail task) is sent after commit by
``notify_many`` through ``core.events``: the ``after_commit`` column below says which.

``EVENT_MAP`` is the only place that says which audit action, notification kind and text an
event has; docs/architecture.md lists it (checked by ``approvals/tests/test_lifecycle_docs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditlogs.services import audit_records
from core.write_batch import WriteBatch
from notifications.models import Kind
from notifications.services import notify_many
from webhooks.services import record_events as record_webhook_events


@dataclass(frozen=True)
class Spec:
    """What one kind of event becomes: an audit action, and (optionally) a notification kind whose
    ``title``/``body`` are ``str.format`` templates over the event's ``text()``."""

    audit: str
    kind: str | None = None
    title: str = ""
    body: str = ""

    @property
    def after_commit(self) -> str:
        return "WebSocket push + e-mail (per preferences)" if self.kind else "-"


@dataclass
class Event:
    """Base of the events. ``target`` is the audited row, ``changes`` the audit row's changes (and
    fields for the notification text); who is notified is given with ``Outbox.emit``."""

    target: Any
    changes: dict = field(default_factory=dict)
    request: Any = None  # the request the notification links to
    data: dict | None = None  # the notification's data
    actor: Any = ...  # default: the outbox's actor

    def text(self) -> dict:
        req = self.request
        out = {"reference": getattr(req, "reference", ""), "title": getattr(req, "title", "")}
        out.update(self.changes)
        return out


# --- requests --------------------------------------------------------------------------------
class RequestCreated(Event): ...


class RequestUpdated(Event): ...


class RequestSubmitted(Event): ...


class RequestResubmitted(Event): ...


class RequestApproved(Event): ...


class RequestRejected(Event): ...


class RequestChangesRequested(Event): ...


class RequestWithdrawn(Event): ...


class RequestCancelled(Event): ...


class RequestMigrated(Event): ...


# --- tasks -----------------------------------------------------------------------------------
class TaskAssigned(Event): ...


class TaskSkipped(Event): ...


class TaskFallbackAdmins(Event): ...


class TaskConditionError(Event): ...


class TaskCancelled(Event): ...


class TaskApproved(Event): ...


class TaskRejected(Event): ...


class TaskChangesRequested(Event): ...


class TaskReassigned(Event): ...


class TaskRetracted(Event): ...


class TaskAssigneeAdded(Event): ...


class TaskReminded(Event): ...


class TaskEscalated(Event): ...


# --- around the lifecycle --------------------------------------------------------------------
class CommentAdded(Event): ...


class AttachmentAdded(Event): ...


class DelegationCreated(Event): ...


class DelegationUpdated(Event): ...


class DelegationDeleted(Event): ...


EVENT_MAP: dict[type[Event], Spec] = {
    RequestCreated: Spec("request.created"),
    RequestUpdated: Spec("request.updated"),
    RequestSubmitted: Spec("request.submitted", Kind.REQUEST_SUBMITTED, "{reference} was submitted", "{title}"),
    RequestResubmitted: Spec("request.resubmitted"),
    RequestApproved: Spec("request.approved", Kind.REQUEST_APPROVED, "{reference} was approved", "{message}"),
    RequestRejected: Spec("request.rejected", Kind.REQUEST_REJECTED, "{reference} was rejected", "{message}"),
    RequestChangesRequested: Spec(
        "request.changes_requested", Kind.CHANGES_REQUESTED, "{reference} was returned for changes", "{message}"
    ),
    RequestWithdrawn: Spec("request.withdrawn"),
    RequestCancelled: Spec("request.cancelled"),
    RequestMigrated: Spec("request.migrated"),
    TaskAssigned: Spec("task.assigned", Kind.TASK_ASSIGNED, "{reference}: {step} needs your decision", "{message}"),
    TaskSkipped: Spec("task.skipped"),
    TaskFallbackAdmins: Spec("task.fallback_admins"),
    TaskConditionError: Spec("task.condition_error"),
    TaskCancelled: Spec("task.cancelled"),
    TaskApproved: Spec("task.approved"),
    TaskRejected: Spec("task.rejected"),
    TaskChangesRequested: Spec("task.changes_requested"),
    TaskReassigned: Spec("task.reassigned", Kind.TASK_REASSIGNED, "{reference}: {step} was reassigned {to}", "{title}"),
    TaskRetracted: Spec(
        "task.retracted", Kind.DECISION_RETRACTED, "{reference}: {who} took back their decision on {step}", "{comment}"
    ),
    TaskAssigneeAdded: Spec("task.assignee_added"),
    TaskReminded: Spec(
        "task.reminded",
        Kind.TASK_REMINDER,
        "Reminder: {reference} {title} is waiting for your decision",
        "Step “{step}” is due at {due}.",
    ),
    TaskEscalated: Spec(
        "task.escalated",
        Kind.TASK_ESCALATED,
        "Escalated (level {level}): {reference} {title} is overdue",
        "Step “{step}” was due at {due}; action: {action}.",
    ),
    CommentAdded: Spec("comment.added", Kind.REQUEST_COMMENTED, "{author} commented on {reference}", "{message}"),
    AttachmentAdded: Spec("attachment.added"),
    DelegationCreated: Spec(
        "delegation.created", Kind.DELEGATION_STARTED, "{author} delegated their approvals to you", "{message}"
    ),
    DelegationUpdated: Spec("delegation.updated"),
    DelegationDeleted: Spec("delegation.deleted"),
}


@dataclass
class Notice:
    """Text of a notification beyond the audited changes (who it is about, the free text)."""

    recipient: Any
    text: dict = field(default_factory=dict)


class Outbox:
    """The events of one transition, written together at the end of its transaction.

    ``writes``: the notifications' rows, and with ``defer_writes`` the writes the engine left for
    the flush (``defer``), go in one statement with the audit chain's lock (issue 14: two round
    trips less per decision). ``defer_writes`` is for services that flush right after their one
    ``do_*`` action: nothing reads those rows back before the flush.
    """

    def __init__(self, *, actor=None, defer_writes: bool = False) -> None:
        self.actor = actor
        self.events: list[tuple[Event, tuple]] = []
        self.writes = WriteBatch()
        self.defer_writes = defer_writes

    def defer(self, batch: WriteBatch) -> None:
        """Leave ``batch``'s writes to the flush when this outbox allows it, else send them now."""
        if self.defer_writes:
            self.writes.extend(batch)
        else:
            batch.execute()

    def emit(self, event: Event, *notices: Notice) -> None:
        """Record ``event``; each ``Notice`` is one notification (recipient + the text's extra fields)."""
        self.events.append((event, notices))

    def entries(self) -> tuple[list[dict], list[dict]]:
        """(notifications, audit rows) of the events so far, in emission order."""
        notes, audits = [], []
        for event, notices in self.events:
            spec = EVENT_MAP[type(event)]
            audits.append(
                {
                    "action": spec.audit,
                    "actor": self.actor if event.actor is ... else event.actor,
                    "organization": event.target.organization_id,
                    "target": event.target,
                    "changes": event.changes,
                }
            )
            if spec.kind is None:
                continue
            for notice in notices:
                if notice.recipient is None:
                    continue
                text = {**event.text(), **notice.text}
                notes.append(
                    {
                        "recipient": notice.recipient,
                        "kind": spec.kind,
                        "title": spec.title.format(**text),
                        "body": spec.body.format(**text),
                        "request": event.request,
                        "data": event.data,
                    }
                )
        return notes, audits

    def stamps(self) -> dict:
        """Organization id -> ``updated_at`` of the organization rows this transition has loaded
        (with its request): the key of the webhook endpoints kept in process."""
        out = {}
        for event, _ in self.events:
            for obj in (event.request, event.target):
                descriptor = getattr(type(obj), "organization", None)
                if obj is not None and hasattr(descriptor, "is_cached") and descriptor.is_cached(obj):
                    out[obj.organization_id] = obj.organization.updated_at
        return out

    def flush(self) -> None:
        notes, audits = self.entries()
        record_webhook_events(audits, stamps=self.stamps())  # the webhook outbox rows, sent after commit
        notify_many(notes, batch=self.writes)
        # last, with the deferred writes and the notifications: the chain lock is held until commit
        audit_records(audits, batch=self.writes)
        self.events = []
