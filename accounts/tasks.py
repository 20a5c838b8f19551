"""Background jobs of accounts: one service call each, safe to run twice."""

from celery import shared_task

from accounts import services


@shared_task
def prune_login_counters() -> int:
    """The periodic cleanup of past per-account login windows (declared in core/periodic.py)."""
    return services.login_counters_prune()
