"""Reads for the notification API, the WebSocket consumer and the e-mail sweep."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.models import Channel, DeliveryStatus, EmailDelivery, Kind, Notification, NotificationPreference


def notifications_for(*, user, unread: bool | None = None) -> QuerySet[Notification]:
    """The user's own notifications, newest first (scoped to their organization too)."""
    qs = Notification.objects.for_organization(user.organization_id).filter(recipient=user)
    if unread is True:
        qs = qs.filter(read_at__isnull=True)
    elif unread is False:
        qs = qs.filter(read_at__isnull=False)
    return qs.order_by("-created_at", "-id")


def unread_count(*, user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def preferences_for(*, user) -> dict[str, dict[str, bool]]:
    """Every kind x channel for the user; a missing row means enabled."""
    prefs = {kind: {channel: True for channel in Channel.values} for kind in Kind.values}
    for kind, channel, enabled in NotificationPreference.objects.filter(user=user).values_list(
        "kind", "channel", "enabled"
    ):
        if kind in prefs and channel in prefs[kind]:
            prefs[kind][channel] = enabled
    return prefs


def channels_enabled_many(*, user_ids, kinds):
    """``lookup(user_id, kind) -> {channel: bool}`` for many users and kinds (one query)."""
    off: dict = {}
    for user_id, kind, channel, on in NotificationPreference.objects.filter(
        user_id__in=user_ids, kind__in=kinds
    ).values_list("user_id", "kind", "channel", "enabled"):
        off[(user_id, kind, channel)] = on

    def lookup(user_id, kind: str) -> dict[str, bool]:
        return {channel: off.get((user_id, kind, channel), True) for channel in Channel.values}

    return lookup


def due_email_deliveries(*, now=None, limit: int = 100) -> list:
    """Pending deliveries the sweep should try: older than the grace period and past their backoff."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.EMAIL_PENDING_GRACE_SECONDS)
    return list(
        EmailDelivery.objects.filter(status=DeliveryStatus.PENDING, created_at__lte=now - grace)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
