from celery import shared_task

from webhooks import services


@shared_task(acks_late=True)
def deliver_webhook(delivery_id: str) -> str:
    """One attempt at one delivery; a failure queues the next attempt itself (after commit, with backoff)."""
    return services.deliver(delivery_id=delivery_id).result


@shared_task
def sweep_webhooks() -> int:
    """Periodic: queue the deliveries that are due and not in flight (lost tasks, dead workers)."""
    return services.sweep()
