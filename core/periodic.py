"""Every periodic task of the system, declared in this one place.

``manage.py setup_periodic_tasks`` writes these into django-celery-beat's tables
(idempotent); the embedded default runs the same list in-process (core/embedded.py).
Each entry: name -> (task path, interval in seconds from settings).
"""

from django.conf import settings


def periodic_tasks() -> dict[str, tuple[str, int]]:
    return {
        "sla-scan": ("approvals.tasks.sla_scan", settings.SLA_SCAN_INTERVAL_SECONDS),
        "notifications-send-pending-emails": (
            "notifications.tasks.send_pending_emails",
            settings.EMAIL_RETRY_INTERVAL_SECONDS,
        ),
        "accounts-prune-login-counters": ("accounts.tasks.prune_login_counters", 3600),
        "webhooks-sweep": ("webhooks.tasks.sweep_webhooks", settings.WEBHOOK_SWEEP_INTERVAL_SECONDS),
    }
