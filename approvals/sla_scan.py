"""The SLA scan: due reminders and escalations, claimed and carried out in batches. See docs/sla.md.

A batch is one transaction: lock the batch's request rows (SKIP LOCKED), then its tasks;
re-check each task under the lock; insert the (task, level) records; apply the changes; emit the
``TaskReminded``/``TaskEscalated`` events, written by one ``Outbox.flush()`` (one ``notify_many``,
then, last, one ``audit_records``).
Pushes and e-mail tasks leave after commit. A SIGKILL rolls the whole batch back; the next scan does it again, once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals.lifecycle import events as ev
from approvals.models import ApprovalTask, Assignment, EscalationRecord, TaskStatus
from approvals.sla_escalation import ScanLookups, next_escalation_at, perform_on_breach, resolve_escalation_targets
from requests.models import Request
from workflows.models import EscalateTo, OnBreach

logger = logging.getLogger(__name__)

BUSY_ATTEMPTS = 3


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


@dataclass
class BatchResult:
    items: list[ScanItem] = field(default_factory=list)
    settled: list = field(default_factory=list)  # task ids done, or found with nothing to do
    busy: list = field(default_factory=list)  # (task id, request id): someone holds the request
    deferred: list = field(default_factory=list)  # (task id, request id): to do in a transaction of its own
    left_due: list = field(default_factory=list)  # task ids still due (failed, or done by someone else)


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

    ``FOR UPDATE SKIP LOCKED`` skips tasks another scan or a decision is working on. The claim is
    its own short transaction; the batch transaction then locks request rows first, then tasks.
    """
    with transaction.atomic():
        qs = queryset.exclude(pk__in=list(exclude)) if exclude else queryset
        return list(qs.select_for_update(skip_locked=True, of=("self",)).values_list("pk", "request_id")[:size])


def run_scan(
    *, now: datetime | None = None, dry_run: bool = False, limit: int | None = None, on_tasks=None
) -> ScanReport:
    """Send due reminders, perform due escalations. Safe to run concurrently and to re-run.

    At most ``limit`` (``SLA_SCAN_LIMIT``) tasks per kind, claimed ``SLA_SCAN_BATCH_SIZE`` at a
    time; each batch is one transaction (``_remind_batch``, ``_escalate_batch``). ``on_tasks(n)``,
    when given, hears of each batch's claimed tasks (progress bars).
    """
    now = now or timezone.now()
    limit = limit or settings.SLA_SCAN_LIMIT
    size = settings.SLA_SCAN_BATCH_SIZE
    report = ScanReport(now=now, dry_run=dry_run)
    lookups = ScanLookups()
    for kind, candidates, process in (
        ("reminder", reminder_candidates(now), _remind_batch),
        ("escalation", escalation_candidates(now), _escalate_batch),
    ):
        items = report.reminders if kind == "reminder" else report.escalations
        if dry_run:
            tasks = list(candidates.select_related("step", "request", "organization")[:limit])
            assignees = _active_assignees(tasks, lookups)
            items.extend(_plan(kind, t, assignees[t.pk], now, lookups) for t in tasks)
            continue
        handled = 0  # tasks settled, failed or given up on: what the limit counts
        stuck: set = set()  # failed, or busy too often: still due, so not claimed again in this run
        attempts: dict = {}
        while handled < limit:
            claimed = claim_batch(candidates, exclude=stuck, size=min(size, limit - handled))
            if not claimed:
                break
            result = _run_batch(kind, process, claimed, now, lookups, report)
            if on_tasks is not None:
                on_tasks(len(claimed))
            items.extend(result.items)
            handled += len(result.settled)
            stuck.update(result.left_due)
            for task_id, _ in result.busy:
                # Someone holds the request (a decision, another scan): try again shortly, then
                # leave it to the next scan.
                attempts[task_id] = attempts.get(task_id, 0) + 1
                if attempts[task_id] >= BUSY_ATTEMPTS:
                    stuck.add(task_id)
                    handled += 1
                    report.busy += 1
            if not result.settled:
                time.sleep(0.05)
    if not dry_run and (report.reminders or report.escalations or report.errors):
        logger.info("sla scan", extra={"sla_scan": report.as_dict()})
    return report


def _run_batch(kind: str, process, claimed: list, now, lookups, report: ScanReport) -> BatchResult:
    """One batch; if it fails, its tasks one by one so that one bad task does not hold up the others."""
    try:
        result = process(claimed, now, lookups)
    except Exception as exc:  # one bad task must not stop the scan; it is retried by the next scan
        if len(claimed) > 1:
            result = BatchResult()
            for one in claimed:
                _merge(result, _run_batch(kind, process, [one], now, lookups, report))
            return result
        task_id = claimed[0][0]
        logger.exception("SLA %s of task %s failed", kind, task_id)
        report.errors.append(f"{kind} of task {task_id}: {exc!r}")
        return BatchResult(settled=[task_id], left_due=[task_id])
    for one in result.deferred:
        _merge(result, _run_batch(kind, process, [one], now, lookups, report))
    result.deferred = []
    return result


def _merge(into: BatchResult, other: BatchResult) -> None:
    into.items += other.items
    into.settled += other.settled
    into.busy += other.busy
    into.left_due += other.left_due


# -- one batch, one transaction ---------------------------------------------------------------
def _lock_batch(claimed: list, lookups: ScanLookups) -> tuple[list, list, list]:
    """Lock the requests (SKIP LOCKED), then the tasks of those we hold: (tasks, busy, gone task ids).

    Same order as the lifecycle's lock helpers (``approvals/lifecycle/locks.py``: request, then task). A scan never
    waits for a request; the task locks may wait only for another scan's momentary claim query.
    """
    request_ids = {request_id for _, request_id in claimed}
    held = set(
        Request.all_objects.select_for_update(skip_locked=True)
        .filter(pk__in=request_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    busy = [(t, r) for t, r in claimed if r not in held]
    wanted = [t for t, r in claimed if r in held]
    tasks = list(
        ApprovalTask.objects.select_for_update(of=("self",))
        .select_related("request")
        .filter(pk__in=wanted)
        .order_by("pk")
    )
    for task in tasks:
        task.step = lookups.step(task.step_id)
        task.organization = lookups.organization(task.organization_id)
    found = {t.pk for t in tasks}
    return tasks, busy, [t for t in wanted if t not in found]


def _active_assignees(tasks, lookups: ScanLookups) -> dict:
    """task id -> the users who still have to decide it (one query for the batch)."""
    out: dict = {t.pk: [] for t in tasks}
    if tasks:
        rows = list(
            Assignment.objects.filter(task__in=[t.pk for t in tasks], is_active=True, decision="")
            .order_by("created_at")
            .values_list("task_id", "assignee_id")
        )
        users = lookups.users({user_id for _, user_id in rows})
        for task_id, user_id in rows:
            out[task_id].append(users[user_id])
    return out


def _insert_records(records: list[EscalationRecord]) -> set:
    """Write the (task, level) proofs; the task ids whose proof is ours. A task missing here had
    its step done by someone else: it gets no effect."""
    if not records:
        return set()
    EscalationRecord.objects.bulk_create(records, ignore_conflicts=True)
    ours = EscalationRecord.objects.filter(pk__in=[r.pk for r in records]).values_list("task_id", flat=True)
    return set(ours)


def _remind_batch(claimed: list, now, lookups: ScanLookups) -> BatchResult:
    with transaction.atomic():
        tasks, busy, gone = _lock_batch(claimed, lookups)
        result = BatchResult(busy=busy, settled=[*gone, *(t.pk for t in tasks)])
        due = [
            t
            for t in tasks
            if t.status == TaskStatus.PENDING
            and t.reminded_at is None
            and t.remind_at is not None
            and t.remind_at <= now
        ]
        if not due:
            return result
        assignees = _active_assignees(due, lookups)
        ours = _insert_records(
            [
                EscalationRecord(
                    organization_id=t.organization_id,
                    task=t,
                    level=0,
                    action="remind",
                    details={"recipients": [str(u.pk) for u in assignees[t.pk]]},
                )
                for t in due
            ]
        )
        ApprovalTask.objects.filter(pk__in=[t.pk for t in due]).update(reminded_at=now)
        outbox = ev.Outbox(actor=None)
        for task in (t for t in due if t.pk in ours):
            req, users = task.request, assignees[task.pk]
            text = {"step": task.step.name, "due": task.due_at.isoformat() if task.due_at else "no deadline"}
            outbox.emit(
                ev.TaskReminded(
                    task,
                    {"reminded_at": [None, now], "recipients": [None, [u.email for u in users]]},
                    request=req,
                    data={"task": str(task.pk), "due_at": task.due_at},
                ),
                *(ev.Notice(user, text) for user in users),
            )
            result.items.append(
                ScanItem(
                    kind="reminder",
                    task_id=str(task.pk),
                    request_reference=req.reference,
                    step=task.step.name,
                    level=0,
                    action="remind",
                    recipients=[u.email for u in users],
                )
            )
        outbox.flush()  # notifications, then the audit rows: the chain lock until commit
    return result


def _escalate_batch(claimed: list, now, lookups: ScanLookups) -> BatchResult:
    """Escalations of a batch. An action other than ``notify`` goes through the engine, which
    audits as it goes: such tasks are deferred to a batch of their own, so that in a shared batch
    the organization's chain lock is taken only by the audit rows written last."""
    with transaction.atomic():
        tasks, busy, gone = _lock_batch(claimed, lookups)
        result = BatchResult(busy=busy, settled=list(gone))
        plans, finished = [], []
        for task in tasks:
            step = task.step
            if task.status != TaskStatus.PENDING or task.next_escalation_at is None or task.next_escalation_at > now:
                result.settled.append(task.pk)
            elif task.escalation_level + 1 > step.max_escalations:  # policy lowered since scheduling: stop
                finished.append(task.pk)
                result.settled.append(task.pk)
            elif len(claimed) > 1 and step.on_breach != OnBreach.NOTIFY:
                result.deferred.append((task.pk, task.request_id))
            else:
                plans.append(task)
                result.settled.append(task.pk)
        if finished:
            ApprovalTask.objects.filter(pk__in=finished).update(next_escalation_at=None)
        if not plans:
            return result
        assignees = _active_assignees(plans, lookups)
        records, targets_of = [], {}
        for task in plans:
            step, users = task.step, assignees[task.pk]
            targets, per_assignee, note = resolve_escalation_targets(task, users, lookups)
            targets_of[task.pk] = (targets, per_assignee, note)
            details = {
                "escalate_to": step.escalate_to or EscalateTo.MANAGER,
                "targets": [str(u.pk) for u in targets],
                "assignees": [str(u.pk) for u in users],
                "scheduled_at": task.next_escalation_at.isoformat(),
            }
            if note:
                details["note"] = note
            records.append(
                EscalationRecord(
                    organization_id=task.organization_id,
                    task=task,
                    level=task.escalation_level + 1,
                    action=step.on_breach,
                    target=targets[0] if targets else None,
                    details=details,
                )
            )
        ours = _insert_records(records)
        outbox, changed = ev.Outbox(actor=None), []
        for task, record in zip(plans, records, strict=True):
            if task.pk not in ours:  # the level was done by someone else: leave the task alone
                result.left_due.append(task.pk)
                continue
            step, req, users = task.step, task.request, assignees[task.pk]
            level, action = record.level, record.action
            targets, per_assignee, note = targets_of[task.pk]
            outcome = perform_on_breach(task, action, users, targets, per_assignee)
            if outcome:
                note = "; ".join(filter(None, [note, outcome]))
                EscalationRecord.objects.filter(pk=record.pk).update(details={**record.details, "outcome": outcome})
            before_next = task.next_escalation_at
            next_at = next_escalation_at(task, level, now, lookups)
            task.escalation_level, task.next_escalation_at = level, next_at
            changed.append(task)
            recipients = list({u.pk: u for u in [*targets, *users]}.values())
            text = {"step": step.name, "due": task.due_at.isoformat() if task.due_at else "?", "level": level}
            outbox.emit(
                ev.TaskEscalated(
                    task,
                    {
                        "escalation_level": [level - 1, level],
                        "next_escalation_at": [before_next, next_at],
                        "on_breach": [None, action],
                        "targets": [None, [u.email for u in targets]],
                    },
                    request=req,
                    data={"task": str(task.pk), "level": level, "action": action},
                ),
                *(ev.Notice(user, {**text, "action": action}) for user in recipients),
            )
            result.items.append(
                ScanItem(
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
            )
        # Only the SLA columns: an engine action above may have settled the task in the meantime.
        # One statement per new state; a batch's escalations mostly share theirs (now + repeat hours).
        by_state: dict = {}
        for task in changed:
            by_state.setdefault((task.escalation_level, task.next_escalation_at), []).append(task.pk)
        for (level, next_at), ids in by_state.items():
            ApprovalTask.objects.filter(pk__in=ids).update(escalation_level=level, next_escalation_at=next_at)
        outbox.flush()  # notifications, then the audit rows: the chain lock until commit
    return result


def _plan(kind: str, task, assignees: list, now, lookups: ScanLookups) -> ScanItem:
    """What the scan would do to ``task`` (dry run: reads only, locks and writes nothing)."""
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
    targets, _, note = resolve_escalation_targets(task, assignees, lookups)
    recipients = list({u.pk: u for u in [*targets, *assignees]}.values())
    return ScanItem(
        kind=kind,
        task_id=str(task.pk),
        request_reference=ref,
        step=step.name,
        level=level,
        action=step.on_breach,
        recipients=[u.email for u in recipients],
        next_escalation_at=next_escalation_at(task, level, now, lookups),
        note=note,
    )
