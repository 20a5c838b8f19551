"""Real processes: a Celery worker on the Redis broker delivers to a real HTTP receiver on loopback."""

import os
import signal
import time

import pytest
from django.conf import settings
from django.db import transaction
from standardwebhooks import Webhook

from core.tests.servers import celery_worker
from notifications.tests.conftest import celery_broker
from webhooks import services
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_url():
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) as the Celery broker")
    return settings.REDIS_URL


def start_worker(tmp_path):
    return celery_worker(
        tmp_path,
        WEBHOOK_ALLOWED_PRIVATE_NETWORKS="127.0.0.1",
        WEBHOOK_REQUIRE_HTTPS="false",
        WEBHOOK_RETRY_BACKOFF_SECONDS=1,
        WEBHOOK_TIMEOUT_SECONDS=3,
    )


def stop(worker) -> str:
    if worker.poll() is None:
        worker.terminate()
    return worker.communicate(timeout=30)[0]


def wait_for(predicate, what, timeout=60.0, worker=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"worker exited before {what}: {worker.stdout.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_500_then_200_is_received_once_after_the_retry(endpoint_for, receiver, redis_url, tmp_path):
    endpoint = endpoint_for(receiver.url)
    receiver.script = [(500, "try later", {})]
    worker = start_worker(tmp_path)
    try:
        with celery_broker(redis_url):
            with transaction.atomic():
                delivery = services.send_test_event(actor=None, endpoint=endpoint)
            wait_for(
                lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded", "the retry", worker=worker
            )
            time.sleep(2)  # nothing more arrives
    finally:
        output = stop(worker)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2), output
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 200]
    assert len(receiver.requests) == 2
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {delivery.message_id}
    for sent in receiver.requests:
        Webhook(endpoint.secret).verify(sent["body"], sent["headers"])


def test_kill_9_of_the_worker_mid_delivery_loses_nothing(endpoint_for, receiver, redis_url, tmp_path, settings):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 0
    endpoint = endpoint_for(receiver.url)
    receiver.delays = [15]  # the first request hangs: the worker dies waiting for the answer
    first = start_worker(tmp_path)
    second = None
    try:
        with celery_broker(redis_url):
            with transaction.atomic():
                delivery = services.send_test_event(actor=None, endpoint=endpoint)
            wait_for(receiver.arrived.is_set, "the first attempt", worker=first)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            row = WebhookDelivery.objects.get(pk=delivery.pk)
            assert (row.status, row.attempts) == ("pending", 0) and row.claimed_until is not None
            second = start_worker(tmp_path)

            def swept_and_sent():
                services.sweep()  # the periodic job: re-queues it once the dead worker's claim expired
                return WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded"

            wait_for(swept_and_sent, "the delivery after the crash", timeout=90, worker=second)
    finally:
        first_output = stop(first)
        second_output = stop(second) if second is not None else ""
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1), (first_output, second_output)
    assert len(receiver.requests) == 2
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {delivery.message_id}
