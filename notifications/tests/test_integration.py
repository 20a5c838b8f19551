"""Real processes: a Celery worker on the Redis broker; two daphne servers sharing PostgreSQL and Redis."""

import email
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from approvals.models import ApprovalTask
from core.testing import api_client
from core.tests.servers import (
    RedisProcess,
    approve_over_http,
    celery_worker,
    daphne_servers,
    redis_server_binary,
    server_env,
)
from notifications import services
from notifications.models import EmailDelivery, Kind
from notifications.tasks import send_email_delivery
from notifications.tests.conftest import access_token, celery_broker, make_notification
from requests.tests.factories import make_flow, user_step

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
needs_redis_server = pytest.mark.skipif(not redis_server_binary(), reason="redis-server binary is not installed")


@pytest.fixture
def redis_url():
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL): broker and channel layer of the real processes")
    return settings.REDIS_URL


def wait_for(predicate, timeout=60.0, what="condition", proc=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}) before {what}: {proc.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def read_messages(directory: Path) -> list:
    """The file backend appends each message to a per-connection .log file, separated by a line of dashes."""
    messages = []
    for path in sorted(directory.glob("*.log")):
        for chunk in path.read_text().split("-" * 79 + "\n"):
            if chunk.strip():
                messages.append(email.message_from_string(chunk))
    return messages


def test_celery_worker_sends_the_email_once(alice, redis_url, tmp_path):
    worker = celery_worker(tmp_path)
    try:
        with celery_broker(redis_url):
            started = time.monotonic()
            first = make_notification(alice, kind=Kind.TASK_ASSIGNED, title="Approve: laptop")
            delivery = EmailDelivery.objects.get(notification=first)
            wait_for(lambda: EmailDelivery.objects.get(pk=delivery.pk).status == "sent", what="sent", proc=worker)
            print(f"commit -> e-mail sent by the worker (incl. worker start-up): {time.monotonic() - started:.1f}s")

            # A duplicate of the task (a redelivery): the worker skips it. Then one more notification, so
            # that once its e-mail is sent the (FIFO, one at a time) worker has handled the duplicate too.
            send_email_delivery.apply_async(args=[str(delivery.pk)])
            second = make_notification(alice, kind=Kind.REQUEST_APPROVED, title="Approved: laptop")
            wait_for(
                lambda: EmailDelivery.objects.get(notification=second).status == "sent", what="second", proc=worker
            )
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    messages = read_messages(tmp_path)
    assert sorted(m["Subject"] for m in messages) == ["Approve: laptop", "Approved: laptop"], output
    assert all(m["To"] == alice.email and m.is_multipart() for m in messages)
    assert "succeeded" in output and "'skipped'" in output, output


def test_twenty_commits_in_quick_succession_leave_in_one_message_and_each_email_is_sent_once(
    alice, bob, redis_url, tmp_path, settings
):
    """The e-mail dispatcher (core/events.py): the deliveries of commits within one window leave in one
    Celery message; the real worker sends every one of them once."""
    settings.EMAIL_DISPATCH_WINDOW_MS = 1000  # wide enough for 20 commits on a loaded machine
    worker = celery_worker(tmp_path)
    try:
        with celery_broker(redis_url):
            for i in range(20):
                make_notification(alice if i % 2 else bob, title=f"Approve #{i}")
            deliveries = EmailDelivery.objects.all()
            wait_for(lambda: deliveries.filter(status="sent").count() == 20, what="20 sent", proc=worker)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]

    assert set(deliveries.values_list("status", "attempts")) == {("sent", 1)}
    messages = read_messages(tmp_path)
    assert sorted(m["Subject"] for m in messages) == sorted(f"Approve #{i}" for i in range(20)), output
    received = output.count("Task notifications.tasks.send_email_deliveries[")  # "received" and "succeeded"
    assert 2 <= received <= 4, output  # one message, two if a window closed between the commits


def test_a_process_killed_before_the_dispatch_window_closes_leaves_the_deliveries_to_the_sweep(alice, redis_url):
    """Nothing is lost between the commit and the publish: the ids the dispatcher held die with the
    process, the rows stay pending, and the sweep sends each once."""
    script = (
        "import os, django; django.setup()\n"
        "from django.db import transaction\n"
        "from accounts.models import User\n"
        "from core import events\n"
        "from notifications.services import notify\n"
        f"alice = User.objects.get(pk='{alice.pk}')\n"
        "for i in range(3):\n"
        "    with transaction.atomic():\n"
        "        notify(recipient=alice, kind='task_assigned', title=f'Approve #{i}')\n"
        "assert events.dispatcher._pending, 'the ids should wait for the window'\n"
        "os._exit(0)  # killed: no atexit flush\n"
    )
    env = server_env(DJANGO_SETTINGS_MODULE="notifications.tests.worker_settings", TEST_EMAIL_FILE_PATH="/nonexistent",
                     EMAIL_DISPATCH_WINDOW_MS="60000")  # fmt: skip
    argv = [sys.executable, "-c", script]
    done = subprocess.run(argv, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    pending = EmailDelivery.objects.filter(status="pending")
    assert pending.count() == 3
    with celery_broker(redis_url) as app, app.connection_for_read() as conn:
        assert conn.default_channel.client.llen(f"{settings.TEST_REDIS_PREFIX}:celery") == 0  # never published
    pending.update(created_at=timezone.now() - timedelta(seconds=60))  # past the sweep's grace
    assert services.send_pending_emails() == {"sent": 3}
    assert services.send_pending_emails() == {}
    assert sorted(m.subject for m in mail.outbox) == ["Approve #0", "Approve #1", "Approve #2"]
    assert set(EmailDelivery.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_live_feed_across_two_servers(org, alice, bob, redis_url):
    """Alice listens on server A; Bob approves her request through server B; A pushes the result."""
    version = make_flow(org, [user_step(1, "Approve", bob)])
    created = api_client(alice).post(
        "/api/v1/requests/",
        {"workflow": version.definition.key, "title": "Laptop", "data": {"amount": 900, "vendor": "V"}, "submit": True},
        format="json",
    )
    assert created.status_code == 201, created.json()
    request_id = created.json()["id"]
    task = ApprovalTask.objects.get(request_id=request_id)

    with daphne_servers(2) as (server_a, server_b):
        ws_a = server_a.replace("http://", "ws://") + "/ws/notifications/"

        # A real client sees the 4401 close code (not an HTTP 403) for a bad token.
        with connect(f"{ws_a}?token=bad.token.value", origin=server_a) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd.code == 4401

        with connect(f"{ws_a}?token={access_token(alice)}", origin=server_a) as ws:
            hello = ws.recv(timeout=5)
            assert '"unread_count"' in hello
            started = time.monotonic()
            response = approve_over_http(server_b, task, access_token(bob))
            assert response.status_code == 200, response.text
            while True:
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "notification" and message["notification"]["kind"] == "request_approved":
                    break
            latency = time.monotonic() - started
            assert message["notification"]["request"] == request_id
            assert set(message["notification"]) == {"id", "kind", "title", "body", "request", "created_at"}

            ws.send(json.dumps({"type": "mark_read", "id": message["notification"]["id"]}))
            while (reply := json.loads(ws.recv(timeout=5)))["type"] != "unread_count":
                pass
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
    print(f"approve on B -> notification on A: {latency * 1000:.0f} ms; unread after mark_read: {reply['count']}")


# --- the channel layer failing under an open socket (issue 19.11) -----------------------------------


def _socket(base, user):
    return connect(f"{base.replace('http://', 'ws://')}/ws/notifications/?token={access_token(user)}", origin=base)


def _next(ws, kind, timeout=20.0):
    """The next message of ``kind`` (others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == kind:
            return message


def _close_code(ws, timeout=20.0) -> int:
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
    return closed.value.rcvd.code if closed.value.rcvd else 1006


@needs_redis_server
def test_socket_survives_a_redis_restart_and_catches_up(org, alice):
    """The consumer keeps the socket through Redis dying and coming back: it rejoins its group
    (the new Redis knows nothing), sends a fresh unread_count, and pushes arrive again."""
    redis = RedisProcess().start()
    try:
        with daphne_servers(1, REDIS_URL=redis.url, WS_LAYER_GRACE_SECONDS=60) as (base,), _socket(base, alice) as ws:
            assert _next(ws, "unread_count")["count"] == 0
            redis.stop()
            time.sleep(1.0)  # the consumer's receive meets the dead Redis and retries
            redis.start()
            assert _next(ws, "unread_count")["count"] == 0  # the catch-up once the layer answers
            ws.send(json.dumps({"type": "ping"}))
            assert _next(ws, "pong") == {"type": "pong"}
            # The server's layer: the private Redis under the session's key prefix (settings_test).
            config = {"hosts": [redis.url], "prefix": f"{settings.TEST_REDIS_PREFIX}:asgi"}
            layer = {"BACKEND": "core.channel_layer.BlockingPoolRedisChannelLayer", "CONFIG": config}
            with override_settings(CHANNEL_LAYERS={"default": layer}):
                make_notification(alice, title="After the restart")
            assert _next(ws, "notification")["notification"]["title"] == "After the restart"
    finally:
        redis.stop()


@needs_redis_server
def test_socket_closes_4503_while_redis_stays_down(org, alice):
    """A lasting outage ends the socket cleanly with 4503 (try again later) (not 1006), and a socket
    opened while Redis is down gets 4503 at once: the client retries later."""
    redis = RedisProcess().start()
    try:
        with daphne_servers(1, REDIS_URL=redis.url, WS_LAYER_GRACE_SECONDS=1) as (base,):
            with _socket(base, alice) as ws:
                assert _next(ws, "unread_count")["count"] == 0
                redis.stop()
                assert _close_code(ws) == 4503
            with _socket(base, alice) as ws:
                assert _close_code(ws) == 4503
    finally:
        redis.stop()
