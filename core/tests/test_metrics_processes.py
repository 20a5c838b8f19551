"""Metrics from real processes: gunicorn with several workers and a prefork Celery worker (multiprocess mode)."""

import time
import uuid

import httpx
import pytest
from django.conf import settings

from core.tests.metrics_support import parse, value
from core.tests.servers import celery_worker, free_port, gunicorn_server, metric_writers, stop
from notifications.tasks import send_email_delivery
from notifications.tests.conftest import celery_broker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_gunicorn_workers_are_merged_into_one_scrape(tmp_path):
    with gunicorn_server(tmp_path, WEB_CONCURRENCY=2, WEB_THREADS=1) as base:
        first = parse(httpx.get(f"{base}/metrics", timeout=10).text)
        for _ in range(30):  # a new connection each: the two workers share them
            assert httpx.get(f"{base}/health/live/", timeout=10).status_code == 200
        samples = parse(httpx.get(f"{base}/metrics", timeout=10).text)
        forwarded = httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    route = {"route": "/health/live/", "method": "GET", "status": "200"}
    assert value(samples, "http_requests_total", **route) - value(first, "http_requests_total", **route) == 30
    assert value(samples, "requests", state="pending") == 0  # database gauges in the same scrape
    assert forwarded.status_code == 403
    writers = metric_writers(tmp_path)
    assert len(writers) >= 2, f"one process answered everything: {sorted(writers)}"


def test_celery_worker_serves_task_metrics(tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) as the Celery broker")
    port = free_port()
    worker = celery_worker(
        tmp_path, pool=("--concurrency", "2"), CELERY_METRICS_PORT=port, METRICS_TOKEN="worker-scrape-token"
    )
    url = f"http://127.0.0.1:{port}/metrics"
    auth = {"Authorization": "Bearer worker-scrape-token"}
    name = {"task": send_email_delivery.name}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url, headers=auth, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert worker.poll() is None and time.monotonic() < deadline, "worker metrics endpoint did not start"
            time.sleep(0.3)
        assert httpx.get(url, timeout=5).status_code == 403  # the token is required
        with celery_broker(settings.REDIS_URL):
            for _ in range(3):
                send_email_delivery.apply_async(args=[str(uuid.uuid4())])  # unknown ids: the task skips them
        while True:
            samples = parse(httpx.get(url, headers=auth, timeout=5).text)
            if value(samples, "celery_tasks_total", state="success", **name) >= 3:
                break
            assert worker.poll() is None and time.monotonic() < deadline, "tasks were not counted"
            time.sleep(0.3)
    finally:
        stop(worker, timeout=20)
        output = worker.stdout.read()
    assert value(samples, "celery_task_duration_seconds_count", **name) == 3, output
    assert value(samples, "celery_tasks_total", state="failure", **name) == 0
