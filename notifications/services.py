"""Notifications are rows first (same transaction as their cause), pushed after commit."""

from core import events
from notifications.consumers import group_for
from notifications.models import Notification


def serialize_for_push(notification: Notification) -> dict:
    return {
        "id": str(notification.id),
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "request": str(notification.request_id) if notification.request_id else None,
        "created_at": notification.created_at.isoformat(),
    }


def notify(*, recipient, kind: str, title: str, body: str = "", request=None, data: dict | None = None) -> Notification:
    """Create one notification; call inside the transaction of the change that causes it."""
    notification = Notification.objects.create(
        organization_id=recipient.organization_id,
        recipient=recipient,
        kind=kind,
        title=title[:300],
        body=body,
        request=request,
        data=data or {},
    )
    events.push_to_group(
        group_for(recipient.pk), {"type": "notification.created", "notification": serialize_for_push(notification)}
    )
    return notification
