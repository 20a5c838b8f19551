"""SLA: deadlines of approval tasks on the organization's business calendar, reminders and escalations.

``schedule_task_sla(task=...)`` is called by the engine when it activates a task.
``run_scan()`` (the periodic ``approvals.tasks.sla_scan`` and ``manage.py sla_scan``)
sends reminders and performs escalations that are due. See docs/sla.md.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from accounts.selectors import users_with_role
from approvals.models import ApprovalTask, Assignment, Decision, EscalationRecord, TaskStatus
from auditlogs.services import audit_record
from core.exceptions import ApplicationError, ValidationFailed
from notifications.models import Kind
from notifications.services import notify
from organizations.calendar import BusinessCalendar
from requests.models import Request
from workflows.models import EscalateTo, OnBreach

logger = logging.getLogger(__name__)


def schedule_task_sla(*, task, calendar: BusinessCalendar | None = None) -> None:
    """Set ``due_at``, ``remind_at`` and ``next_escalation_at`` of a task being activated. Does not save.

    ``due_at`` = activation + ``step.sla_hours`` business hours; ``remind_at`` = activation +
    ``reminder_at_percent`` of that; the first escalation is due at ``due_at`` (none when the step
    has no SLA or ``max_escalations`` is 0). ``calendar`` may be passed to reuse loaded holidays.
    """
    step = task.step
    start = task.activated_at or timezone.now()
    task.reminded_at = None
    task.escalation_level = 0
    if not step.sla_hours:
        task.due_at = task.remind_at = task.next_escalation_at = None
        return
    cal = calendar or BusinessCalendar.for_organization(task.organization)
    task.due_at = cal.add_hours(start, step.sla_hours)
    pct = step.reminder_at_percent
    task.remind_at = cal.add_hours(start, step.sla_hours * pct / 100) if pct and 0 < pct < 100 else None
    task.next_escalation_at = task.due_at if step.max_escalations else None


# ---------------------------------------------------------------------------------------
# Overdue helpers (API filters and serializers use these)
# ---------------------------------------------------------------------------------------
def overdue_task_q(now=None) -> Q:
    """Tasks that are pending past their deadline: ``ApprovalTask.objects.filter(overdue_task_q())``."""
    return Q(status=TaskStatus.PENDING, due_at__lt=now or timezone.now())


def is_task_overdue(task, now=None) -> bool:
    return task.status == TaskStatus.PENDING and task.due_at is not None and task.due_at < (now or timezone.now())


def overdue_request_exists(now=None) -> Exists:
    """Any pending task of the request's current round past its deadline.

    ``Request.objects.annotate(overdue=overdue_request_exists())`` or ``.filter(overdue_request_exists())``.
    """
    return Exists(ApprovalTask.objects.filter(overdue_task_q(now), request=OuterRef("pk"), round=OuterRef("round")))


def request_escalation_level() -> Coalesce:
    """Highest ``escalation_level`` over the pending tasks of the request's current round, 0 if none.

    ``Request.objects.annotate(escalation_level=request_escalation_level())`` (one subquery).
    """
    top = ApprovalTask.objects.filter(
        request=OuterRef("pk"), round=OuterRef("round"), status=TaskStatus.PENDING
    ).order_by("-escalation_level")
    return Coalesce(Subquery(top.values("escalation_level")[:1]), Value(0), output_field=IntegerField())


def parse_overdue_param(value) -> bool | None:
    """The ``overdue`` query parameter: None when absent, True/False, else ``ValidationFailed`` (400)."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise ValidationFailed(details={"overdue": ["Expected true or false."]})


# ---------------------------------------------------------------------------------------
# The scan
# ---------------------------------------------------------------------------------------
@dataclass
class ScanItem:
    kind: str  # "reminder" | "escalation"
    task_id: str
    request_reference: str
    step: str
    level: int
    action: str
    recipients: list[str] = field(default_factory=list)
    next_escalation_at: datetime | None = None
    note: str = ""

    def line(self) -> str:
        who = ", ".join(self.recipients) or "nobody"
        text = f"{self.kind} {self.request_reference} [{self.step}] task {self.task_id} level {self.level}: "
        text += f"{self.action} -> {who}"
        if self.next_escalation_at:
            text += f"; next escalation at {self.next_escalation_at.isoformat()}"
        if self.note:
            text += f" ({self.note})"
        return text


@dataclass
class ScanReport:
    now: datetime
    dry_run: bool = False
    reminders: list[ScanItem] = field(default_factory=list)
    escalations: list[ScanItem] = field(default_factory=list)
    busy: int = 0  # due tasks skipped because another transaction holds them (picked up by the next scan)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would do" if self.dry_run else "did"
        out = [item.line() for item in [*self.reminders, *self.escalations]]
        out.append(
            f"SLA scan at {self.now.isoformat()} {verb}: {len(self.reminders)} reminder(s), "
            f"{len(self.escalations)} escalation(s), {self.busy} busy, {len(self.errors)} error(s)"
        )
        return out + [f"error: {e}" for e in self.errors]

    def as_dict(self) -> dict:
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "reminders": len(self.reminders),
            "escalations": len(self.escalations),
            "busy": self.busy,
            "errors": len(self.errors),
        }


_BUSY = object()
BUSY_ATTEMPTS = 3


def reminder_candidates(now: datetime):
    """Pending, not yet reminded, reminder time passed (partial index ``task_pending_reminder``)."""
    return ApprovalTask.objects.filter(
        status=TaskStatus.PENDING, reminded_at__isnull=True, remind_at__lte=now
    ).order_by("remind_at")


def escalation_candidates(now: datetime):
    """Pending with an escalation due (partial index ``task_pending_escalation``)."""
    return ApprovalTask.objects.filter(status=TaskStatus.PENDING, next_escalation_at__lte=now).order_by(
        "next_escalation_at"
    )


def claim_batch(queryset, *, exclude=(), size: int) -> list[tuple]:
    """The claim query: up to ``size`` due (task id, request id) not locked by anyone else right now.

    ``FOR UPDATE SKIP LOCKED`` skips tasks another scan or a decision is working on; the rows are
    then taken one by one, each in its own transaction (request row first, then the task).
    """
    with transaction.atomic():
        qs = queryset.exclude(pk__in=list(exclude)) if exclude else queryset
        return list(qs.select_for_update(skip_locked=True, of=("self",)).values_list("pk", "request_id")[:size])


def run_scan(*, now: datetime | None = None, dry_run: bool = False, limit: int | None = None) -> ScanReport:
    """Send due reminders, perform due escalations. Safe to run concurrently and to re-run.

    Every reminder/escalation is one transaction that writes its ``EscalationRecord`` (unique per
    task and level), its notifications, its audit row and the task's new SLA state together; a scan
    killed half-way leaves either all of a step or none of it, and the next scan finishes the rest.
    """
    now = now or timezone.now()
    limit = limit or getattr(settings, "SLA_SCAN_LIMIT", 1000)
    batch = getattr(settings, "SLA_SCAN_BATCH_SIZE", 50)
    report = ScanReport(now=now, dry_run=dry_run)
    calendars: dict = {}
    for kind, candidates, process in (
        ("reminder", reminder_candidates(now), _remind),
        ("escalation", escalation_candidates(now), _escalate),
    ):
        items = report.reminders if kind == "reminder" else report.escalations
        if dry_run:
            for task in candidates.select_related("step", "request", "organization")[:limit]:
                items.append(_plan(kind, task, now, calendars))
            continue
        seen: set = set()  # done, failed, or busy too often: not claimed again in this run
        attempts: dict = {}
        while len(seen) < limit:
            claimed = claim_batch(candidates, exclude=seen, size=min(batch, limit - len(seen)))
            if not claimed:
                break
            progressed = False
            for task_id, request_id in claimed:
                try:
                    result = process(task_id, request_id, now, calendars)
                except Exception as exc:  # one bad task must not stop the scan; it is retried next time
                    logger.exception("SLA %s of task %s failed", kind, task_id)
                    report.errors.append(f"{kind} of task {task_id}: {exc!r}")
                    seen.add(task_id)
                    continue
                if result is _BUSY:
                    # Someone holds the request (a decision, another scan): try again shortly, then
                    # leave it to the next scan.
                    attempts[task_id] = attempts.get(task_id, 0) + 1
                    if attempts[task_id] >= BUSY_ATTEMPTS:
                        seen.add(task_id)
                        report.busy += 1
                    continue
                seen.add(task_id)
                progressed = True
                if result is not None:
                    items.append(result)
            if not progressed:
                time.sleep(0.05)
    if not dry_run and (report.reminders or report.escalations or report.errors):
        logger.info("sla scan", extra={"sla_scan": report.as_dict()})
    return report


# -- one task, one transaction --------------------------------------------------------------
def _lock(task_id, request_id):
    """Lock the request row (SKIP LOCKED: ``_BUSY`` when someone holds it), then the task row.

    Same order as the engine (``requests.locks.lock_request`` then its tasks), so no deadlock; the
    task lock may wait only for a momentary claim query of another scan. None: the task is gone.
    """
    if not Request.all_objects.select_for_update(skip_locked=True).filter(pk=request_id).values_list("pk"):
        return _BUSY
    return (
        ApprovalTask.objects.select_for_update(of=("self",))
        .select_related("step", "request", "organization")
        .filter(pk=task_id)
        .first()
    )


def _record(*, task, level: int, action: str, target=None, details=None) -> bool:
    """Write the (task, level) proof; False when it already exists (someone did this step)."""
    try:
        with transaction.atomic():
            EscalationRecord.objects.create(
                organization_id=task.organization_id,
                task=task,
                level=level,
                action=action,
                target=target,
                details=details or {},
            )
    except IntegrityError:
        return False
    return True


def _active_assignees(task) -> list:
    return [
        a.assignee
        for a in Assignment.objects.filter(task=task, is_active=True, decision="")
        .select_related("assignee__manager")
        .order_by("created_at")
    ]


def _test_sleep() -> None:
    # Test-only hook: hold the transaction open so a test can SIGKILL the process mid-scan.
    delay = os.environ.get("SLA_SCAN_TEST_SLEEP")
    if delay:
        time.sleep(float(delay))


def _remind(task_id, request_id, now, calendars):
    with transaction.atomic():
        task = _lock(task_id, request_id)
        if task is None or task is _BUSY:
            return task
        if (
            task.status != TaskStatus.PENDING
            or task.reminded_at is not None
            or task.remind_at is None
            or task.remind_at > now
        ):
            return None
        assignees = _active_assignees(task)
        if not _record(task=task, level=0, action="remind", details={"recipients": [str(u.pk) for u in assignees]}):
            ApprovalTask.objects.filter(pk=task.pk).update(reminded_at=now)
            return None
        ApprovalTask.objects.filter(pk=task.pk).update(reminded_at=now)
        req = task.request
        for user in assignees:
            notify(
                recipient=user,
                kind=Kind.TASK_REMINDER,
                title=f"Reminder: {req.reference} {req.title} is waiting for your decision",
                body=f"Step “{task.step.name}” is due at {task.due_at.isoformat() if task.due_at else 'no deadline'}.",
                request=req,
                data={"task": str(task.pk), "due_at": task.due_at},
            )
        audit_record(
            action="task.reminded",
            organization=task.organization_id,
            target=task,
            changes={"reminded_at": [None, now], "recipients": [None, [u.email for u in assignees]]},
        )
        _test_sleep()
        return ScanItem(
            kind="reminder",
            task_id=str(task.pk),
            request_reference=req.reference,
            step=task.step.name,
            level=0,
            action="remind",
            recipients=[u.email for u in assignees],
        )


def _calendar(task, calendars) -> BusinessCalendar:
    cal = calendars.get(task.organization_id)
    if cal is None:
        cal = calendars[task.organization_id] = BusinessCalendar.for_organization(task.organization)
    return cal


def _next_escalation(task, level: int, now, calendars):
    step = task.step
    if level >= step.max_escalations or not step.escalation_repeat_hours:
        return None
    base = max(task.next_escalation_at or now, now)  # a late scan does not fire a burst of levels
    return _calendar(task, calendars).add_hours(base, step.escalation_repeat_hours)


def _users_by_ref(org_id, ref: str):
    qs = User.objects.filter(organization_id=org_id, is_active=True)
    ref = (ref or "").strip()
    if not ref:
        return []
    try:
        return list(qs.filter(Q(email__iexact=ref) | Q(pk=uuid.UUID(ref))))
    except ValueError:
        return list(qs.filter(email__iexact=ref))


def resolve_escalation_targets(task, assignees) -> tuple[list, dict, str]:
    """Who an escalation goes to: (targets, {assignee id: their target}, note).

    ``manager``: each assignee's manager; ``role``: members of the role ``escalate_to_ref``;
    ``user``: the user named by email or id. Nobody found: the organization's admins (noted).
    An empty ``escalate_to`` means ``manager``.
    """
    step = task.step
    org_id = task.organization_id
    how = step.escalate_to or EscalateTo.MANAGER
    per_assignee: dict = {}
    if how == EscalateTo.MANAGER:
        for a in assignees:
            m = a.manager
            if m is not None and m.is_active and m.organization_id == org_id and m.pk != a.pk:
                per_assignee[a.pk] = m
        targets = list({m.pk: m for m in per_assignee.values()}.values())
    elif how == EscalateTo.ROLE:
        targets = list(users_with_role(organization=org_id, slug=step.escalate_to_ref).order_by("email").distinct())
    else:
        targets = _users_by_ref(org_id, step.escalate_to_ref)
    note = ""
    if not targets:
        targets = list(users_with_role(organization=org_id, slug="org_admin").order_by("email").distinct())
        note = f"no {how} target found; escalated to the organization admins"
    return targets, per_assignee, note


def _escalate(task_id, request_id, now, calendars):
    with transaction.atomic():
        task = _lock(task_id, request_id)
        if task is None or task is _BUSY:
            return task
        if task.status != TaskStatus.PENDING or task.next_escalation_at is None or task.next_escalation_at > now:
            return None
        step, req = task.step, task.request
        level = task.escalation_level + 1
        if level > step.max_escalations:  # policy lowered since scheduling: stop here
            ApprovalTask.objects.filter(pk=task.pk).update(next_escalation_at=None)
            return None
        assignees = _active_assignees(task)
        targets, per_assignee, note = resolve_escalation_targets(task, assignees)
        action = step.on_breach
        details = {
            "escalate_to": step.escalate_to or EscalateTo.MANAGER,
            "targets": [str(u.pk) for u in targets],
            "assignees": [str(u.pk) for u in assignees],
            "scheduled_at": task.next_escalation_at.isoformat(),
        }
        if note:
            details["note"] = note
        if not _record(task=task, level=level, action=action, target=targets[0] if targets else None, details=details):
            return None
        outcome = _perform(task, action, assignees, targets, per_assignee)
        if outcome:
            note = "; ".join(filter(None, [note, outcome]))
            EscalationRecord.objects.filter(task=task, level=level).update(details={**details, "outcome": outcome})
        before_next = task.next_escalation_at
        next_at = _next_escalation(task, level, now, calendars)
        ApprovalTask.objects.filter(pk=task.pk).update(escalation_level=level, next_escalation_at=next_at)
        title = f"Escalated (level {level}): {req.reference} {req.title} is overdue"
        body = f"Step “{step.name}” was due at {task.due_at.isoformat() if task.due_at else '?'}; action: {action}."
        recipients = list({u.pk: u for u in [*targets, *assignees]}.values())
        for user in recipients:
            notify(
                recipient=user,
                kind=Kind.TASK_ESCALATED,
                title=title,
                body=body,
                request=req,
                data={"task": str(task.pk), "level": level, "action": action},
            )
        audit_record(
            action="task.escalated",
            organization=task.organization_id,
            target=task,
            changes={
                "escalation_level": [level - 1, level],
                "next_escalation_at": [before_next, next_at],
                "on_breach": [None, action],
                "targets": [None, [u.email for u in targets]],
            },
        )
        _test_sleep()
        return ScanItem(
            kind="escalation",
            task_id=str(task.pk),
            request_reference=req.reference,
            step=step.name,
            level=level,
            action=action,
            recipients=[u.email for u in recipients],
            next_escalation_at=next_at,
            note=note,
        )


_AUTO_DECISIONS = {
    OnBreach.AUTO_APPROVE: (Decision.APPROVED, "Approved automatically: SLA breached."),
    OnBreach.AUTO_REJECT: (Decision.REJECTED, "Rejected automatically: SLA breached."),
}


def _perform(task, action: str, assignees, targets, per_assignee) -> str:
    """Carry out ``on_breach`` through the engine's services. Returns a note when it fell back to notify."""
    if action == OnBreach.NOTIFY:
        return ""
    from approvals import services as engine  # the engine's transitions (lock, audit, notify)

    try:
        with transaction.atomic():
            if action in _AUTO_DECISIONS:
                decision, comment = _AUTO_DECISIONS[action]
                engine.task_decide(actor=None, task_id=task.pk, decision=decision, comment=comment, system=True)
            elif action == OnBreach.REASSIGN:
                if not targets:
                    return "reassign: no target, notified only"
                active = {u.pk for u in assignees}
                for a in assignees:
                    to = per_assignee.get(a.pk) or targets[0]
                    if to.pk in active:
                        continue
                    engine.task_reassign(
                        actor=None, task_id=task.pk, to_user=to, from_user=a, reason="escalation", system=True
                    )
                    active.add(to.pk)
            elif action == OnBreach.ADD_APPROVER:
                active = {u.pk for u in assignees}
                for user in targets:
                    if user.pk not in active:
                        engine.task_add_assignee(
                            actor=None, task_id=task.pk, user=user, reason="escalation", system=True
                        )
    except ApplicationError as exc:
        # The escalation still happened (recorded, notified, audited); the action could not be applied.
        return f"{action} not applied: {exc}"
    return ""


def _plan(kind: str, task, now, calendars) -> ScanItem:
    """What the scan would do to ``task`` (dry run: reads only, locks and writes nothing)."""
    assignees = _active_assignees(task)
    ref, step = task.request.reference, task.step
    if kind == "reminder":
        return ScanItem(
            kind=kind,
            task_id=str(task.pk),
            request_reference=ref,
            step=step.name,
            level=0,
            action="remind",
            recipients=[u.email for u in assignees],
        )
    level = task.escalation_level + 1
    if level > step.max_escalations:
        return ScanItem(
            kind=kind,
            task_id=str(task.pk),
            request_reference=ref,
            step=step.name,
            level=level,
            action="none",
            note="max_escalations reached: would stop escalating",
        )
    targets, _, note = resolve_escalation_targets(task, assignees)
    recipients = list({u.pk: u for u in [*targets, *assignees]}.values())
    return ScanItem(
        kind=kind,
        task_id=str(task.pk),
        request_reference=ref,
        step=step.name,
        level=level,
        action=step.on_breach,
        recipients=[u.email for u in recipients],
        next_escalation_at=_next_escalation(task, level, now, calendars),
        note=note,
    )
