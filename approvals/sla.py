"""SLA: deadlines of approval tasks on the organization's business calendar, reminders and escalations.

``schedule_task_sla(task=...)`` is called by the engine when it activates a task; the overdue
helpers serve the API's filters and serializers. The scan that sends due reminders and performs
due escalations is ``approvals.sla_scan.run_scan`` (who and what of an escalation:
``approvals/sla_escalation.py``). See docs/sla.md.
"""

from __future__ import annotations

from django.db.models import Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.models import ApprovalTask, TaskStatus
from organizations.calendar import BusinessCalendar


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
