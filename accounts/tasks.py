"""Background jobs of accounts: one service call each, safe to run twice."""

from celery import shared_task

from accounts import emails, services
from accounts.models import User


@shared_task
def prune_login_counters() -> int:
    """The periodic cleanup of past per-account login windows (declared in core/periodic.py)."""
    return services.login_counters_prune()


@shared_task
def send_password_reset_email(user_id: str) -> bool:
    """The reset link for an active user (a deactivated one gets nothing)."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    emails.send_password_reset(user)
    return True


@shared_task
def send_password_changed_email(user_id: str) -> bool:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return False
    emails.send_password_changed(user)
    return True
