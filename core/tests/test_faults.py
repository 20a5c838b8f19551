"""Faults with real services: a private redis-server that the test kills and restarts, and a
PostgreSQL backend that is terminated under a live process.

Never touches the shared Redis on 6379 or stops PostgreSQL: each test starts its own
redis-server on a free port and points the cache, channel layer and Celery broker at it.
"""

import contextlib
import time

import httpx
import psycopg
import pytest
from django.core import mail
from django.db import close_old_connections, connection
from django.test import override_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import auth_cache
from core.testing import PASSWORD, api_client, error_code, make_org, make_user
from core.tests.servers import RedisProcess, daphne_servers, redis_server_binary, shared_database_url
from notifications.tests.conftest import celery_broker  # resets kombu's process-wide pools in and out

needs_redis_server = pytest.mark.skipif(not redis_server_binary(), reason="redis-server binary is not installed")
LOGIN = "/api/v1/auth/login/"
ME = "/api/v1/auth/me/"


@contextlib.contextmanager
def private_redis():
    """A private Redis that every Redis user of this process points at while the block runs."""
    redis = RedisProcess().start()
    url = redis.url
    try:
        with override_settings(
            REDIS_URL=url,
            CACHES={"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": url, "RETRY_SECONDS": 0.2}},
            CHANNEL_LAYERS={
                "default": {"BACKEND": "core.channel_layer.BlockingPoolRedisChannelLayer", "CONFIG": {"hosts": [url]}}
            },
            CELERY_BROKER_URL=url,
        ):
            yield redis
    finally:
        redis.stop()


def _login(email):
    return api_client().post(LOGIN, {"email": email, "password": PASSWORD}, format="json")


# --- Redis --------------------------------------------------------------------------------------


@needs_redis_server
@pytest.mark.django_db
def test_rest_keeps_serving_with_redis_down_and_ready_follows_redis(requester, client, settings):
    other = make_user(requester.organization, "other@acme-test.test")
    settings.LOGIN_RATE_PER_ACCOUNT = "3/h"
    with private_redis() as redis:
        assert client.get("/health/ready/").status_code == 200
        assert _login(requester.email).status_code == 200

        redis.stop()
        ready = client.get("/health/ready/")
        assert ready.status_code == 503
        assert error_code(ready) == "service_unavailable"
        assert ready.json()["error"]["details"] == {"database": "ok", "redis": "down"}
        # Login and authenticated API calls keep working (rate limits fall back to process memory).
        login = _login(requester.email)
        assert login.status_code == 200, login.content
        me = api_client(requester).get(ME)
        assert me.status_code == 200
        # ...and the limits still hold while Redis is down (not fail-open): 3/h per account,
        # counted in the database, so the attempts before the outage count too.
        assert _login(requester.email).status_code == 200
        refused = _login(requester.email)
        assert refused.status_code == 429
        assert error_code(refused) == "rate_limited"

        redis.start()
        time.sleep(0.3)  # the breaker's retry time (RETRY_SECONDS above)
        assert client.get("/health/ready/").status_code == 200
        assert _login(requester.email).status_code == 429  # the account's window is not forgotten
        assert _login(other.email).status_code == 200


@needs_redis_server
@pytest.mark.django_db
def test_cache_outage_is_logged_not_raised(caplog):
    from django.core.cache import cache

    with private_redis() as redis:
        cache.set("k", 1)
        assert cache.get("k") == 1
        redis.stop()
        with caplog.at_level("ERROR", logger="core.breaker"):
            assert cache.add("counter", 1, 60) is True
            assert cache.incr("counter") == 2
            assert cache.get("k") is None
        assert any("Redis unavailable" in r.message for r in caplog.records)
        redis.start()
        time.sleep(0.3)  # the breaker's retry time
        assert cache.get("counter") is None  # Redis is used again once it is back


# --- a decision with Redis down (engine + notifications) --------------------------------------


@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_decision_commits_with_redis_down_and_email_is_delivered_after_it_returns():
    from approvals.models import ApprovalTask, TaskStatus
    from notifications import services as notification_services
    from notifications.models import DeliveryStatus, EmailDelivery, Notification
    from requests import services as request_services
    from requests.models import Request
    from workflows.demo_seed import seed

    seed()
    from accounts.models import User

    alice = User.objects.get(email="alice@acme.example")
    mark = User.objects.get(email="mark@acme.example")
    with private_redis() as redis, celery_broker(redis.url):
        request = request_services.request_create(
            actor=alice,
            workflow="purchase-request",
            title="Laptop",
            data={"amount": 900, "vendor": "Dell"},
            submit=True,
        )
        task = ApprovalTask.objects.get(request=request, status=TaskStatus.PENDING)
        redis.stop()

        before = Notification.objects.count()
        response = api_client(mark).post(f"/api/v1/tasks/{task.pk}/approve/", {"comment": "ok"}, format="json")
        assert response.status_code == 200, response.content
        task.refresh_from_db()
        assert task.status == TaskStatus.APPROVED
        assert Request.objects.get(pk=request.pk).current_stage == 2
        assert Notification.objects.count() > before  # in-app notifications are stored
        pending = EmailDelivery.objects.filter(status=DeliveryStatus.PENDING)
        assert pending.exists()  # the broker was down: the e-mails wait in the database
        mail.outbox.clear()

        redis.start()
        with override_settings(EMAIL_PENDING_GRACE_SECONDS=0):
            counts = notification_services.send_pending_emails()
        assert counts.get("sent", 0) == pending.model.objects.filter(status=DeliveryStatus.SENT).count() > 0
        assert not EmailDelivery.objects.filter(status=DeliveryStatus.PENDING).exists()
        assert len(mail.outbox) == counts["sent"]


# --- the database -----------------------------------------------------------------------------


def _terminate(pid: int) -> None:
    with psycopg.connect(shared_database_url(), autocommit=True) as other:
        killed = other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    assert killed


@pytest.mark.django_db(transaction=True)
def test_lost_database_connection_gives_503_envelope_then_recovers():
    org = make_org("fault-db")
    user = make_user(org, "db@fault.test")
    client = api_client(user)
    assert client.get(ME).status_code == 200
    connection.health_check_done = True  # as within one request: no check before the next query
    _terminate(connection.connection.info.backend_pid)
    auth_cache.forget_all()  # a process without a copy of the user: authentication queries

    response = client.get(ME)
    assert response.status_code == 503
    assert error_code(response) == "service_unavailable"
    # What every server does at the end of a request (request_finished): drop the broken connection.
    close_old_connections()
    assert client.get(ME).status_code == 200


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_live_server_recovers_from_a_killed_database_connection_without_restart():
    org = make_org("fault-live")
    user = make_user(org, "live@fault.test")
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}
    app_name = "wf-fault-probe"
    url = shared_database_url() + f"?application_name={app_name}"
    with daphne_servers(1, DATABASE_URL=url, CONN_MAX_AGE=600) as (base,):
        assert httpx.get(f"{base}{ME}", headers=headers).status_code == 200
        with psycopg.connect(shared_database_url(), autocommit=True) as other:
            pids = [
                row[0]
                for row in other.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [app_name]
                ).fetchall()
            ]
            assert pids, "the server holds no persistent connection"
            for pid in pids:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
        statuses = []
        for _ in range(3):
            r = httpx.get(f"{base}{ME}", headers=headers)
            statuses.append(r.status_code)
            if r.status_code != 200:
                assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable", r.text
        # CONN_HEALTH_CHECKS replaces the dead connection at the start of the next request;
        # at worst one request sees the 503 envelope, and the process recovers by itself.
        assert statuses[-1] == 200 and statuses.count(503) <= 1, statuses
        ready = httpx.get(f"{base}/health/ready/")
        assert ready.status_code == 200
        login = httpx.post(f"{base}{LOGIN}", json={"email": user.email, "password": PASSWORD})
        assert login.status_code == 200
