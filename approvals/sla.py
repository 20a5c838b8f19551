"""SLA: deadlines of approval tasks on the organization's business calendar, reminders and escalations.

``schedule_task_sla(task=...)`` is called by the engine when it activates a task.
``run_scan()`` (the periodic ``approvals.tasks.sla_scan`` and ``manage.py sla_scan``)
sends reminders and performs escalations that are due. See docs/sla.md.
"""

from __future__ import annotations

from django.utils import timezone

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
