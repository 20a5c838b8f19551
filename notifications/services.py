"""Notifications are rows first (same transaction as their cause); push and e-mail follow after commit.

- ``notify`` is called by the engine inside its transactions. It writes the ``Notification``
  (the source of truth) and, if the recipient wants e-mail for this kind, an ``EmailDelivery``
  row in the same transaction; after commit it pushes to the recipient's Channels group and
  hands the delivery ids to the dispatcher (``events.enqueue_batch``), which queues
  ``send_email_deliveries`` once per window for every commit of the process. Nothing leaves the
  process before the commit.
- Preferences: kind x channel, a missing row means enabled. With ``in_app`` off the row is still
  written (history and e-mail depend on it) but already read and not pushed.
- ``deliver_email`` sends one delivery under a row lock: a duplicated or retried task never sends
  a delivery that has been sent (or is being sent) by another.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from auditlogs.services import audit_record
from core import events
from core.compiled_query import CompiledQuery
from core.exceptions import NotFound, ValidationFailed
from core.ids import parse_uuid
from core.write_batch import WriteBatch
from notifications import selectors
from notifications.groups import group_for
from notifications.models import Channel, DeliveryStatus, EmailDelivery, Kind, Notification, NotificationPreference

logger = logging.getLogger(__name__)


def serialize_for_push(notification: Notification) -> dict:
    """The ``notification`` object of the WebSocket contract (docs/api.md)."""
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
    return notify_many(
        [{"recipient": recipient, "kind": kind, "title": title, "body": body, "request": request, "data": data}]
    )[0]


def notify_many(items: list[dict], *, batch: WriteBatch | None = None) -> list[Notification]:
    """Create the notifications of one transition (``notify``'s keyword arguments, one dict each).

    Batched because a decision fans out to several people: the preferences (kept in process, else one query), one insert
    of the notifications and one of the e-mail deliveries, then, after commit, one push batch
    and one e-mail task, however many recipients there are.
    """
    items = [i for i in items if i.get("recipient") is not None]
    for item in items:
        if item["kind"] not in Kind.values:
            raise ValueError(f"Unknown notification kind: {item['kind']!r}")
    if not items:
        return []
    enabled = selectors.channels_enabled_for({i["recipient"].pk: i["recipient"] for i in items}.values())
    now = timezone.now()
    notifications, pushes, deliveries = [], [], []
    for item in items:
        recipient = item["recipient"]
        on = enabled(recipient.pk, item["kind"])
        notification = Notification(
            organization_id=recipient.organization_id,
            recipient=recipient,
            kind=item["kind"],
            title=item["title"][:300],
            body=item.get("body") or "",
            request=item.get("request"),
            data=item.get("data") or {},
            created_at=now,
            # In-app off: kept for the record (and the e-mail) but never unread, never pushed.
            read_at=None if on[Channel.IN_APP] else now,
        )
        notifications.append(notification)
        if on[Channel.IN_APP]:
            pushes.append(
                (
                    group_for(recipient.pk),
                    {"type": "notification.created", "notification": serialize_for_push(notification)},
                )
            )
        if on[Channel.EMAIL] and recipient.email and recipient.is_active and recipient.organization_id:
            deliveries.append(
                EmailDelivery(
                    organization_id=recipient.organization_id, notification=notification, to_address=recipient.email
                )
            )
    # the notifications and their e-mail deliveries in one statement (issue 14); with ``batch``
    # they join the caller's writes, which the caller sends (the lifecycle: with the audit append)
    writes = WriteBatch() if batch is None else batch
    writes.insert(notifications)
    writes.insert(deliveries)
    if batch is None:
        writes.execute()
    if deliveries:
        # With other commits' ids, one Celery message per dispatch window (issue 14); if the broker
        # is down the publish fails (logged) and the rows stay pending for the sweep.
        events.enqueue_batch("notifications.tasks.send_email_deliveries", [str(d.id) for d in deliveries])
    if pushes:
        events.push_many(pushes)
    return notifications


# --- reading ------------------------------------------------------------------------------


def _push_unread_count(*, user, count: int, origin_channel: str | None) -> None:
    """Tell the user's other open sockets (tabs, devices) the new unread count."""
    events.push_to_group(group_for(user.pk), {"type": "unread.changed", "count": count, "origin": origin_channel})


def mark_read(*, user, notification_id, origin_channel: str | None = None) -> Notification:
    """Mark one of the user's own notifications read (idempotent). Anyone else's id is NotFound."""
    pk = parse_uuid(notification_id)
    if pk is None:
        raise NotFound("Notification not found.")
    with transaction.atomic():
        qs = selectors.notifications_for(user=user).filter(pk=pk)
        changed = qs.filter(read_at__isnull=True).update(read_at=timezone.now(), updated_at=timezone.now())
        notification = qs.first()
        if notification is None:
            raise NotFound("Notification not found.")
        if changed:
            _push_unread_count(user=user, count=selectors.unread_count(user=user), origin_channel=origin_channel)
    return notification


def mark_all_read(*, user, origin_channel: str | None = None) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    with transaction.atomic():
        now = timezone.now()
        changed = selectors.notifications_for(user=user, unread=True).update(read_at=now, updated_at=now)
        if changed:
            _push_unread_count(user=user, count=0, origin_channel=origin_channel)
    return changed


# --- preferences --------------------------------------------------------------------------


def validate_preferences(data) -> dict[str, dict[str, bool]]:
    """``{kind: {channel: bool}}`` (any subset) or ValidationFailed with details per kind/channel."""
    if not isinstance(data, dict) or not data:
        raise ValidationFailed(
            "Expected an object {kind: {channel: true|false}}.",
            details={"non_field_errors": ["Expected a non-empty object {kind: {channel: true|false}}."]},
        )
    details: dict[str, list[str]] = {}
    clean: dict[str, dict[str, bool]] = {}
    for kind, channels in data.items():
        if kind not in Kind.values:
            details[str(kind)] = [f"Unknown kind. Choose from: {', '.join(Kind.values)}."]
            continue
        if not isinstance(channels, dict) or not channels:
            details[kind] = ["Expected a non-empty object {channel: true|false}."]
            continue
        for channel, enabled in channels.items():
            if channel not in Channel.values:
                details[f"{kind}.{channel}"] = [f"Unknown channel. Choose from: {', '.join(Channel.values)}."]
            elif not isinstance(enabled, bool):
                details[f"{kind}.{channel}"] = ["Must be true or false."]
            else:
                clean.setdefault(kind, {})[channel] = enabled
    if details:
        raise ValidationFailed(details=details)
    return clean


def update_preferences(*, user, preferences: dict[str, dict[str, bool]]) -> dict[str, dict[str, bool]]:
    """Set the given kind x channel switches (others unchanged); returns the full table."""
    preferences = validate_preferences(preferences)
    with transaction.atomic():
        before = selectors.preferences_for(user=user)
        NotificationPreference.objects.bulk_create(
            [
                NotificationPreference(user=user, kind=kind, channel=channel, enabled=enabled)
                for kind, channels in preferences.items()
                for channel, enabled in channels.items()
            ],
            update_conflicts=True,
            unique_fields=["user", "kind", "channel"],
            update_fields=["enabled", "updated_at"],
        )
        # the key of every process's copy of the user's preferences (selectors.channels_enabled_for)
        get_user_model().objects.filter(pk=user.pk).update(preferences_version=F("preferences_version") + 1)
        selectors.forget_preferences(user.pk)
        transaction.on_commit(lambda: selectors.forget_preferences(user.pk))
        after = selectors.preferences_for(user=user)
        changes = {
            f"{kind}.{channel}": [before[kind][channel], after[kind][channel]]
            for kind in after
            for channel in after[kind]
            if before[kind][channel] != after[kind][channel]
        }
        if changes and user.organization_id:
            audit_record(
                action="notification_preferences.updated",
                actor=user,
                organization=user.organization_id,
                target=user,
                changes=changes,
            )
    return after


# --- e-mail delivery ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    result: str  # sent | retry | failed | skipped (not pending) | busy (locked by another) | missing
    retry_in: int | None = None  # seconds, when result == "retry"


def backoff_seconds(attempts: int) -> int:
    """Delay before the next try after ``attempts`` failed ones: base * 2**(attempts-1), capped."""
    base = settings.EMAIL_RETRY_BACKOFF_SECONDS
    return int(min(base * 2 ** max(attempts - 1, 0), settings.EMAIL_RETRY_BACKOFF_MAX_SECONDS))


# Issue 14: compiling this statement (three tables, FOR UPDATE SKIP LOCKED) was close to half of
# the worker's CPU per e-mail in a profile (4.6 ms per delivery), so it is compiled once per process.
_LOCK_DELIVERY = CompiledQuery(
    lambda pk: (
        EmailDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("notification__recipient", "notification__request")
        .filter(pk=pk)
        .order_by()
    )
)


def deliver_email(*, delivery_id) -> DeliveryOutcome:
    """Send one pending delivery, at most once successfully.

    The delivery row is locked (``FOR UPDATE SKIP LOCKED``) for the whole attempt: a concurrent
    duplicate sees it locked and skips; a later one sees ``sent`` and skips. Every attempt is
    recorded (attempts, last_attempt_at, last_error); after ``EMAIL_MAX_ATTEMPTS`` failures the
    delivery is ``failed`` (visible in the admin).
    """
    from notifications.emails import build_message

    pk = parse_uuid(delivery_id)
    if pk is None:
        return DeliveryOutcome("missing")
    with transaction.atomic():
        found = _LOCK_DELIVERY.fetch(pk=pk)
        delivery = found[0] if found else None
        if delivery is None:
            exists = EmailDelivery.objects.filter(pk=pk).exists()
            return DeliveryOutcome("busy" if exists else "missing")
        if delivery.status != DeliveryStatus.PENDING:
            return DeliveryOutcome("skipped")
        now = timezone.now()
        delivery.attempts += 1
        delivery.last_attempt_at = now
        try:
            build_message(delivery).send(fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any failure of the mail path is recorded and retried
            logger.warning("e-mail delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, exc)
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if delivery.attempts >= settings.EMAIL_MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
                outcome = DeliveryOutcome("failed")
            else:
                delay = backoff_seconds(delivery.attempts)
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                outcome = DeliveryOutcome("retry", retry_in=delay)
        else:
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = timezone.now()
            delivery.next_attempt_at = None
            outcome = DeliveryOutcome("sent")
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "last_attempt_at",
                "last_error",
                "next_attempt_at",
                "sent_at",
                "updated_at",
            ]
        )
    return outcome


def send_pending_emails(*, limit: int = 100) -> dict[str, int]:
    """The sweep: try every due pending delivery (broker outage, lost task, backoff elapsed)."""
    counts: dict[str, int] = {}
    for delivery_id in selectors.due_email_deliveries(limit=limit):
        result = deliver_email(delivery_id=delivery_id).result
        counts[result] = counts.get(result, 0) + 1
    return counts


def retry_failed_delivery(*, actor, delivery: EmailDelivery) -> EmailDelivery:
    """Admin action: give a failed delivery a new round of attempts (audited)."""
    with transaction.atomic():
        locked = EmailDelivery.objects.select_for_update().get(pk=delivery.pk)
        if locked.status != DeliveryStatus.FAILED:
            return locked
        locked.status = DeliveryStatus.PENDING
        locked.attempts = 0
        locked.next_attempt_at = None
        locked.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        events.enqueue("notifications.tasks.send_email_delivery", str(locked.pk))
        audit_record(
            action="email_delivery.retried",
            actor=actor,
            organization=locked.organization_id,
            target=locked,
            changes={"status": [DeliveryStatus.FAILED, DeliveryStatus.PENDING]},
        )
    return locked
