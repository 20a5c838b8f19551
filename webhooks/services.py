"""Webhook endpoints and deliveries: every write of the webhooks app (docs/webhooks.md).

Events enter through ``record_events``, called by the lifecycle outbox (``Outbox.flush``) inside
the transaction of the change: a delivery row per subscribed endpoint, then the delivery task
queued after commit. ``deliver`` makes one attempt: it claims the row (so two workers never send
it at once), sends outside any transaction, and records the attempt; a failure schedules the
next one with exponential backoff (capped), and the periodic ``sweep`` re-queues anything due,
including a delivery whose worker died mid-attempt (its claim expires). At least once: the
``webhook-id`` stays the same, so receivers de-duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets as pysecrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import auth_cache
from auditlogs.services import audit_record
from core import events as after_commit
from core import metrics
from core.exceptions import ValidationFailed
from webhooks import safety, signing
from webhooks.events import ALL, EVENT_TYPES, TEST_EVENT, data_for, payload
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# By dotted path: the tasks module imports this one (no cycle between an app's modules).
DELIVER_TASK = "webhooks.tasks.deliver_webhook"

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 500
USER_AGENT = "workflow-approvals-webhooks/1"


# --- endpoints ------------------------------------------------------------------------------------
def _clean_events(events: list[str]) -> list[str]:
    if not isinstance(events, list) or not events:
        raise ValidationFailed(details={"events": ['A non-empty list of event types, or ["*"].']})
    unknown = sorted(set(events) - {ALL, *EVENT_TYPES})
    if unknown:
        raise ValidationFailed(details={"events": [f"Unknown event types: {', '.join(unknown)}."]})
    return [ALL] if ALL in events else sorted(set(events))


def endpoint_create(*, actor, organization, url: str, events: list[str], is_active: bool = True) -> WebhookEndpoint:
    """A new endpoint; its ``secret`` is returned on the instance this once (the API shows it only here)."""
    safety.check_url(url)
    endpoint = WebhookEndpoint(
        organization=organization,
        url=url,
        events=_clean_events(events),
        is_active=is_active,
        secret=signing.new_secret(),
        created_by=actor,
    )
    with transaction.atomic():
        endpoint.save()
        _audit(actor, endpoint, "webhook.created", {"url": url, "events": endpoint.events, "is_active": is_active})
    return endpoint


def endpoint_update(*, actor, endpoint: WebhookEndpoint, **fields) -> WebhookEndpoint:
    if "url" in fields:
        safety.check_url(fields["url"])
    if "events" in fields:
        fields["events"] = _clean_events(fields["events"])
    with transaction.atomic():
        endpoint = _locked(endpoint)
        changes = {}
        for name, value in fields.items():
            if getattr(endpoint, name) != value:
                changes[name] = [getattr(endpoint, name), value]
                setattr(endpoint, name, value)
        if fields.get("is_active") and endpoint.disabled_at:  # re-enabled by hand: a fresh start
            endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
        if changes:
            endpoint.save()
            _audit(actor, endpoint, "webhook.updated", changes)
    return endpoint


def endpoint_delete(*, actor, endpoint: WebhookEndpoint) -> None:
    with transaction.atomic():
        endpoint = _locked(endpoint)
        _audit(actor, endpoint, "webhook.deleted", {"url": endpoint.url})
        endpoint.delete()


def rotate_secret(*, actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one keeps signing too for ``WEBHOOK_SECRET_GRACE_HOURS``."""
    with transaction.atomic():
        endpoint = _locked(endpoint)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + dt.timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
        endpoint.secret = signing.new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        _audit(actor, endpoint, "webhook.secret_rotated", {"previous_valid_until": endpoint.previous_secret_expires_at})
    return endpoint


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


def _audit(actor, endpoint: WebhookEndpoint, action: str, changes: dict) -> None:
    _endpoints_changed(endpoint.organization_id)
    audit_record(action=action, actor=actor, organization=endpoint.organization_id, target=endpoint, changes=changes)


# --- the organization's subscribers, kept in process ----------------------------------------------
# Issue 14: every transition asked PostgreSQL for its organization's active endpoints. They are kept
# per organization, keyed by the organization row's ``updated_at``: every change of an endpoint
# (each goes through ``_audit`` above) moves it, in the change's transaction, and a transition reads
# the organization row with its request, so the next transition in any process sees the change.
# This process also drops its entry at once; entries expire after ``SUBSCRIBERS_CACHE_SECONDS``.
SUBSCRIBERS_CACHE_SECONDS = 300.0
_SUBSCRIBERS: dict = {}  # organization id -> (organization.updated_at, loaded at, tuple[Subscriber])


@dataclass(frozen=True)
class Subscriber:
    """What the outbox needs of an active endpoint (never mutated, shared between threads)."""

    pk: Any
    organization_id: Any
    events: tuple[str, ...]

    def subscribes_to(self, event_type: str) -> bool:
        return ALL in self.events or event_type in self.events


def _endpoints_changed(organization_id) -> None:
    from organizations.models import Organization

    Organization.objects.filter(pk=organization_id).update(updated_at=timezone.now())
    auth_cache.everyone_changed()  # the copy of the organization each authenticated user carries
    _SUBSCRIBERS.pop(organization_id, None)
    transaction.on_commit(lambda: _SUBSCRIBERS.pop(organization_id, None))


def _subscribers(org_ids: set, stamps: dict) -> list[Subscriber]:
    """The active endpoints of ``org_ids``; from the cache for an organization whose ``updated_at``
    the caller read (``stamps``) and matches the entry, else one query for the rest."""
    now = time.monotonic()
    found, missing = [], set()
    for org_id in org_ids:
        cached = _SUBSCRIBERS.get(org_id)
        stamp = stamps.get(org_id)
        if stamp is not None and cached and cached[0] == stamp and now - cached[1] < SUBSCRIBERS_CACHE_SECONDS:
            found.extend(cached[2])
        else:
            missing.add(org_id)
    if missing:
        rows = WebhookEndpoint.objects.filter(organization_id__in=missing, is_active=True).order_by("created_at")
        loaded = [
            Subscriber(pk, org_id, tuple(events))
            for pk, org_id, events in rows.values_list("pk", "organization_id", "events")
        ]
        found.extend(loaded)
        for org_id in missing:
            if stamps.get(org_id) is not None:
                _SUBSCRIBERS[org_id] = (stamps[org_id], now, tuple(s for s in loaded if s.organization_id == org_id))
    return found


# --- the outbox -----------------------------------------------------------------------------------
def _message_id() -> str:
    return "msg_" + pysecrets.token_urlsafe(18)


def record_events(audits: list[dict[str, Any]], *, stamps: dict | None = None) -> list[WebhookDelivery]:
    """Deliveries for the subscribed events among a change's audit entries (inside its transaction).

    The active endpoints of the organizations concerned come from the in-process cache for those
    whose ``updated_at`` the caller passes in ``stamps`` (organization id -> the value it read in
    this transaction), else from one query; nothing more happens when none subscribes. The rows
    are sent after commit.
    """
    wanted = [entry for entry in audits if entry["action"] in EVENT_TYPES]
    if not wanted:
        return []
    org_ids = {_org_id(entry) for entry in wanted} - {None}
    endpoints = _subscribers(org_ids, stamps or {})
    if not endpoints:
        return []
    now = timezone.now()
    deliveries = []
    for entry in wanted:
        matching = [e for e in endpoints if e.organization_id == _org_id(entry) and e.subscribes_to(entry["action"])]
        if not matching:
            continue
        body = payload(
            event_type=entry["action"],
            timestamp=now,
            data=data_for(
                action=entry["action"], target=entry["target"], actor=entry.get("actor"), changes=entry.get("changes")
            ),
        )
        for endpoint in matching:
            deliveries.append(_new_delivery(endpoint, entry["action"], body, now))
    WebhookDelivery.objects.bulk_create(deliveries)
    _send_after_commit(deliveries)
    return deliveries


def _org_id(entry: dict) -> Any:
    org = entry.get("organization")
    return getattr(org, "pk", org)


def _new_delivery(endpoint, event_type: str, body: dict, now, message_id: str | None = None):
    by = {"endpoint": endpoint} if isinstance(endpoint, WebhookEndpoint) else {"endpoint_id": endpoint.pk}
    return WebhookDelivery(
        organization_id=endpoint.organization_id,
        **by,
        message_id=message_id or _message_id(),
        event_type=event_type,
        payload=body,
        next_attempt_at=now,
    )


def _send_after_commit(deliveries: list[WebhookDelivery], countdown: float | None = None) -> None:
    for delivery in deliveries:
        after_commit.enqueue_in(countdown, DELIVER_TASK, str(delivery.pk))


def send_test_event(*, actor, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``webhook.test`` event to this endpoint (active or not: checking it is the point)."""
    now = timezone.now()
    body = payload(
        event_type=TEST_EVENT,
        timestamp=now,
        data={"endpoint": str(endpoint.pk), "message": "Test event", "sent_by": getattr(actor, "email", None)},
    )
    with transaction.atomic():
        delivery = _new_delivery(endpoint, TEST_EVENT, body, now)
        delivery.save()
        _send_after_commit([delivery])
    return delivery


def redeliver(*, actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again (same ``webhook-id``, so the receiver can tell it is a repeat)."""
    now = timezone.now()
    with transaction.atomic():
        copy = _new_delivery(delivery.endpoint, delivery.event_type, delivery.payload, now, delivery.message_id)
        copy.save()
        audit_record(
            action="webhook.redelivered",
            actor=actor,
            organization=delivery.organization_id,
            target=copy,
            changes={"of": str(delivery.pk), "message_id": delivery.message_id},
        )
        _send_after_commit([copy])
    return copy


# --- delivery -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    result: str  # "succeeded", "retry", "failed", "skipped"
    status_code: int | None = None
    retry_in: float | None = None


def backoff_seconds(attempts: int) -> float:
    """After the n-th failed attempt: base * 2^(n-1), capped."""
    return min(
        settings.WEBHOOK_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), settings.WEBHOOK_RETRY_BACKOFF_MAX_SECONDS
    )


def _claim(delivery_id) -> WebhookDelivery | None:
    """Mark the delivery in flight if it is due and nobody holds it; None when it is not ours to send."""
    now = timezone.now()
    hold = now + dt.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 5)
    claimed = WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        pk=delivery_id,
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now,
    ).update(claimed_until=hold)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def deliver(*, delivery_id) -> Outcome:
    """One attempt at one delivery (the Celery task calls this; safe to run twice)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return Outcome("skipped")
    endpoint = delivery.endpoint
    if not endpoint.is_active and delivery.event_type != TEST_EVENT:
        _finish(delivery, succeeded=False, status_code=None, error="endpoint disabled", duration_ms=0, excerpt="")
        return Outcome("failed")
    body = DjangoJSONEncoder(separators=(",", ":"), ensure_ascii=False).encode(delivery.payload)
    started = time.monotonic()
    status_code, error, excerpt = None, "", ""
    try:
        address = safety.resolve(endpoint.url)
        status_code, excerpt = _post(endpoint, delivery, body, address)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except safety.UnsafeDestination as exc:
        error = str(exc)[:300]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    duration_ms = int((time.monotonic() - started) * 1000)
    return _finish(
        delivery, succeeded=not error, status_code=status_code, error=error, duration_ms=duration_ms, excerpt=excerpt
    )


def _secrets_in_use(endpoint: WebhookEndpoint) -> list[str]:
    in_use = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > timezone.now()
    ):
        in_use.append(endpoint.previous_secret)
    return in_use


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery, body: str, address: str) -> tuple[int, str]:
    """POST to the checked address (Host and SNI keep the name); no redirects; a short excerpt of the answer."""
    url = httpx.URL(endpoint.url)
    host = url.host
    target = url.copy_with(host=address)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": url.netloc.decode(),
        **signing.headers(
            message_id=delivery.message_id,
            timestamp=timezone.now(),
            body=body,
            secrets_in_use=_secrets_in_use(endpoint),
        ),
    }
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    with (
        httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        client.stream(
            "POST", target, content=body.encode(), headers=headers, extensions={"sni_hostname": host}
        ) as response,
    ):
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= EXCERPT_CHARS * 4:  # read no more than an excerpt's worth
                break
        excerpt = b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_CHARS]
        return response.status_code, excerpt


def _finish(delivery, *, succeeded: bool, status_code, error: str, duration_ms: int, excerpt: str) -> Outcome:
    now = timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        delivery.attempts += 1
        WebhookAttempt.objects.create(
            organization_id=delivery.organization_id,
            delivery=delivery,
            number=delivery.attempts,
            created_at=now,
            succeeded=succeeded,
            status_code=status_code,
            duration_ms=duration_ms,
            error=error,
            response_excerpt=excerpt,
        )
        delivery.claimed_until = None
        delivery.last_status_code = status_code
        delivery.last_error = error
        metrics.WEBHOOK_DELIVERIES.labels(result="success" if succeeded else "failure").inc()
        if succeeded:
            delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, now
            if endpoint.failing_since:
                endpoint.failing_since = None
                endpoint.save(update_fields=["failing_since", "updated_at"])
            outcome = Outcome("succeeded", status_code)
        else:
            if endpoint.failing_since is None:
                endpoint.failing_since = now
                endpoint.save(update_fields=["failing_since", "updated_at"])
            give_up = delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS or error == "endpoint disabled"
            if give_up:
                delivery.status = DeliveryStatus.FAILED
                outcome = Outcome("failed", status_code)
            else:
                retry_in = backoff_seconds(delivery.attempts)
                delivery.next_attempt_at = now + dt.timedelta(seconds=retry_in)
                outcome = Outcome("retry", status_code, retry_in)
                _send_after_commit([delivery], countdown=retry_in)
            failing_for = now - endpoint.failing_since
            if endpoint.is_active and failing_for >= dt.timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
                _disable(endpoint, now, f"Failing since {endpoint.failing_since.isoformat()}: {error}"[:200])
        delivery.save()
    return outcome


def _disable(endpoint: WebhookEndpoint, now, reason: str) -> None:
    """Stop sending to an endpoint that has failed for too long; tell the organization's admins."""
    from accounts.catalog import ORG_ADMIN_ROLE
    from accounts.selectors import users_with_role
    from notifications.models import Kind
    from notifications.services import notify_many

    endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    admins = users_with_role(organization=endpoint.organization, slug=ORG_ADMIN_ROLE)
    notify_many(
        [
            {
                "recipient": admin,
                "kind": Kind.WEBHOOK_DISABLED,
                "title": f"Webhook disabled: {endpoint.url}",
                "body": reason,
                "data": {"endpoint": str(endpoint.pk)},
            }
            for admin in admins
        ]
    )
    _audit(None, endpoint, "webhook.disabled", {"is_active": [True, False], "reason": reason})


def sweep(*, limit: int = 500) -> int:
    """Queue the deliveries that are due and not in flight (a lost task, a dead worker, a due retry)."""
    now = timezone.now()
    grace = now - dt.timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)
    due = list(
        WebhookDelivery.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=grace,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        after_commit.enqueue(DELIVER_TASK, str(pk))
    return len(due)
