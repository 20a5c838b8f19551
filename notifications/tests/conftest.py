import contextlib
from datetime import timedelta

import pytest
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken

from core import events
from core.testing import make_user
from notifications.models import Kind
from notifications.services import notify


@pytest.fixture
def alice(org):
    return make_user(org, "alice@acme-test.test", first_name="Alice")


@pytest.fixture
def bob(org):
    return make_user(org, "bob@acme-test.test", first_name="Bob")


@pytest.fixture
def outsider(other_org):
    return make_user(other_org, "olga@other-test.test")


def access_token(user, *, expired: bool = False) -> str:
    token = AccessToken.for_user(user)
    if expired:
        token.set_exp(lifetime=-timedelta(minutes=1))
    return str(token)


def make_notification(user, *, kind=Kind.TASK_ASSIGNED, title="Please approve", **kwargs):
    """Through the real service, committed (pushes and e-mails fire as in production)."""
    with transaction.atomic():
        return notify(recipient=user, kind=kind, title=title, **kwargs)


@contextlib.contextmanager
def celery_broker(url: str):
    """Send tasks for real (not eagerly) to ``url`` for the duration; restore afterwards."""
    from config.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager)

    def reset_pools():
        from kombu import pools

        pools.reset()  # closes and forgets kombu's process-wide connection/producer pools
        app._pool = None
        if "amqp" in app.__dict__:
            app.__dict__["amqp"]._producer_pool = None

    app.conf.broker_url, app.conf.task_always_eager = url, False
    reset_pools()
    try:
        yield app
    finally:
        # What the e-mail dispatcher still holds leaves to this broker, not to the restored one.
        events.flush_dispatch()
        app.conf.broker_url, app.conf.task_always_eager = saved
        reset_pools()
