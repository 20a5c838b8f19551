"""Render one e-mail of a notification: a text and an HTML part from per-kind templates.

Templates: ``notifications/email/<kind>.txt`` and ``.html`` (each extends ``base.txt``/``base.html``).
Rendered at send time from the notification row, so a retried send renders the same thing.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from notifications.models import EmailDelivery, Notification


def request_url(notification: Notification) -> str | None:
    if not notification.request_id:
        return None
    return settings.NOTIFICATION_REQUEST_URL.format(site_url=settings.SITE_URL.rstrip("/"), id=notification.request_id)


def build_message(delivery: EmailDelivery) -> EmailMultiAlternatives:
    notification = delivery.notification
    context = {
        "notification": notification,
        "recipient": notification.recipient,
        "request": notification.request,
        # a task e-mail's button opens the signed page where the assignee decides (approvals/action_links.py)
        "request_url": (notification.data or {}).get("action_url") or request_url(notification),
        "site_url": settings.SITE_URL.rstrip("/"),
        "preferences_url": f"{settings.SITE_URL.rstrip('/')}/api/v1/notifications/preferences/",
    }
    base = f"notifications/email/{notification.kind}"
    text = render_to_string(f"{base}.txt", context)
    html = render_to_string(f"{base}.html", context)
    subject = " ".join(notification.title.split())[:200]
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.to_address],
        headers={"X-Notification-Id": str(notification.id), "X-Notification-Kind": notification.kind},
    )
    message.attach_alternative(html, "text/html")
    return message
