"""Background jobs of notifications: ids in, one service call, safe to run twice."""

from celery import shared_task

from notifications import services


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_email_delivery(self, delivery_id: str) -> str:
    """Send one e-mail delivery; on failure retry with exponential backoff (the service records it)."""
    outcome = services.deliver_email(delivery_id=delivery_id)
    if outcome.result == "retry" and not self.request.is_eager:
        # Eager (embedded default / tests) would retry inline at once: the periodic sweep retries instead.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.result


@shared_task(acks_late=True)
def send_email_deliveries(delivery_ids: list[str]) -> dict[str, int]:
    """The deliveries of one transaction: each sent on its own; one that must wait is retried alone."""
    counts: dict[str, int] = {}
    for delivery_id in delivery_ids:
        outcome = services.deliver_email(delivery_id=delivery_id)
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
        if outcome.result == "retry" and not send_email_deliveries.request.is_eager:
            send_email_delivery.apply_async((delivery_id,), countdown=outcome.retry_in)
    return counts


@shared_task
def send_pending_emails() -> dict:
    """Periodic (core/periodic.py): send pending deliveries whose task was lost or whose backoff elapsed."""
    return services.send_pending_emails()
