"""Celery tasks of approvals. Thin: ids in, one service call, safe to run twice."""

from celery import shared_task


@shared_task(name="approvals.tasks.sla_scan", acks_late=True)
def sla_scan() -> dict:
    """The periodic SLA scan (declared in core/periodic.py as ``sla-scan``)."""
    from approvals.sla_scan import run_scan

    return run_scan().as_dict()
