"""A transition notifies several people at once: the cost must not grow with the recipients."""

import pytest
import redis
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.testing import make_user
from notifications import selectors
from notifications.models import Channel, EmailDelivery, Kind, Notification, NotificationPreference
from notifications.services import notify_many, update_preferences
from notifications.tests.conftest import celery_broker

pytestmark = pytest.mark.django_db(transaction=True)


def items(users, kind=Kind.TASK_ASSIGNED):
    return [{"recipient": u, "kind": kind, "title": f"For {u.email}"} for u in users]


def queries_for(users) -> int:
    """Inside the transaction (after commit the eager test worker sends each e-mail)."""
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        notify_many(items(users))
    return len(ctx.captured_queries)


def test_queries_do_not_grow_with_recipients(org):
    one = [make_user(org)]
    six = [make_user(org) for _ in range(6)]
    assert queries_for(one) == queries_for(six)
    assert Notification.objects.filter(recipient__in=six).count() == 6
    assert EmailDelivery.objects.filter(notification__recipient__in=six).count() == 6


def test_preferences_apply_per_recipient_and_kind(org):
    quiet, loud = make_user(org), make_user(org)
    NotificationPreference.objects.create(user=quiet, kind=Kind.TASK_ASSIGNED, channel=Channel.EMAIL, enabled=False)
    NotificationPreference.objects.create(user=quiet, kind=Kind.TASK_ASSIGNED, channel=Channel.IN_APP, enabled=False)
    NotificationPreference.objects.create(user=loud, kind=Kind.TASK_REMINDER, channel=Channel.EMAIL, enabled=False)
    with transaction.atomic():
        created = notify_many(items([quiet, loud]))
    by_user = {n.recipient_id: n for n in created}
    assert by_user[quiet.pk].read_at is not None  # in-app off: kept, already read
    assert by_user[loud.pk].read_at is None
    assert list(EmailDelivery.objects.values_list("to_address", flat=True)) == [loud.email]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [loud.email]


def test_one_email_task_per_transaction_on_a_real_broker(org, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) as the Celery broker")
    client = redis.Redis.from_url(settings.REDIS_URL)
    queue = f"{settings.TEST_REDIS_PREFIX}:celery"  # the broker's keys carry the session's prefix (settings_test)
    users = [make_user(org) for _ in range(4)]
    with celery_broker(settings.REDIS_URL), transaction.atomic():
        notify_many(items(users))
        assert client.llen(queue) == 0  # nothing leaves before the commit
    assert client.llen(queue) == 1  # one message carrying the four deliveries


def test_a_preference_change_reaches_the_next_transition_in_any_process(org):
    """Preferences are kept in process per user (issue 14), keyed by ``User.preferences_version``:
    another process, whose copy predates a change, must not use it. Emulated by putting that
    process's copy back after the change; the transition reads its recipients afresh."""
    user = make_user(org)
    with transaction.atomic():
        notify_many(items([user]))
    stale = dict(selectors._PREFERENCES)
    assert stale[user.pk][2] == {}  # kept: no preference set

    update_preferences(user=user, preferences={Kind.TASK_ASSIGNED: {Channel.EMAIL: False}})
    selectors._PREFERENCES.update(stale)
    recipient = type(user).objects.get(pk=user.pk)
    with transaction.atomic():
        (created,) = notify_many(items([recipient]))
    assert not EmailDelivery.objects.filter(notification=created).exists()
    assert EmailDelivery.objects.filter(notification__recipient=user).count() == 1  # the first one only
