"""SLA deadlines of approval tasks (stub: the SLA issue replaces the body)."""


def schedule_task_sla(*, task) -> None:
    """Set ``due_at``/``remind_at``/``next_escalation_at`` on a task being activated (before it is saved)."""
    return None
