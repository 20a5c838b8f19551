"""Reads for the notification API, the WebSocket consumer and the e-mail sweep."""

import time
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


# Issue 14: each transition asked PostgreSQL for its recipients' preferences. They are kept per
# user, keyed by ``User.preferences_version``, which ``update_preferences`` raises in its
# transaction; a transition's recipients are user rows it has just read, so the next transition in
# any process sees a change. This process also drops its entry at once; entries expire after
# ``PREFERENCES_CACHE_SECONDS`` and the map is cleared when it holds ``PREFERENCES_CACHE_USERS``.
PREFERENCES_CACHE_SECONDS = 300.0
PREFERENCES_CACHE_USERS = 50_000
_PREFERENCES: dict = {}  # user id -> (preferences_version, loaded at, {(kind, channel): enabled})


def forget_preferences(user_id) -> None:
    _PREFERENCES.pop(user_id, None)


def channels_enabled_for(recipients):
    """``lookup(user_id, kind) -> {channel: bool}`` for the recipients (user instances): from the
    in-process copy for those whose loaded ``preferences_version`` matches it, else one query."""
    now = time.monotonic()
    switches: dict = {}
    versions: dict = {}
    for user in recipients:
        version = user.__dict__.get("preferences_version")  # never a deferred load
        cached = _PREFERENCES.get(user.pk)
        if version is not None and cached and cached[0] == version and now - cached[1] < PREFERENCES_CACHE_SECONDS:
            switches[user.pk] = cached[2]
        else:
            versions[user.pk] = version
    if versions:
        loaded: dict = {pk: {} for pk in versions}
        for user_id, kind, channel, on in NotificationPreference.objects.filter(user_id__in=versions).values_list(
            "user_id", "kind", "channel", "enabled"
        ):
            loaded[user_id][(kind, channel)] = on
        if len(_PREFERENCES) >= PREFERENCES_CACHE_USERS:
            _PREFERENCES.clear()
        for pk, table in loaded.items():
            switches[pk] = table
            if versions[pk] is not None:
                _PREFERENCES[pk] = (versions[pk], now, table)

    def lookup(user_id, kind: str) -> dict[str, bool]:
        table = switches.get(user_id, {})
        return {channel: table.get((kind, channel), True) for channel in Channel.values}

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
