"""Metrics from real processes: gunicorn with several workers and a prefork Celery worker (multiprocess mode)."""

import subprocess
import time
import uuid

import httpx
import pytest
from django.conf import settings

from core.tests.metrics_support import parse, value
from core.tests.servers import BIN, ROOT, free_port, server_env, wait_http
from notifications.tasks import send_email_delivery
from notifications.tests.conftest import celery_broker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_gunicorn_workers_are_merged_into_one_scrape(tmp_path):
    port = free_port()
    env = server_env(
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=2,
        WEB_THREADS=1,
        PROMETHEUS_MULTIPROC_DIR=tmp_path,
        METRICS_TOKEN="",
    )
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "config.wsgi:application", "-c", "config/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/live/", proc=web)
        first = parse(httpx.get(f"{base}/metrics", timeout=10).text)
        for _ in range(30):  # a new connection each: the two workers share them
            assert httpx.get(f"{base}/health/live/", timeout=10).status_code == 200
        samples = parse(httpx.get(f"{base}/metrics", timeout=10).text)
        forwarded = httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    finally:
        stop(web)
    route = {"route": "/health/live/", "method": "GET", "status": "200"}
    assert value(samples, "http_requests_total", **route) - value(first, "http_requests_total", **route) == 30
    assert value(samples, "requests", state="pending") == 0  # database gauges in the same scrape
    assert forwarded.status_code == 403
    writers = {path.name.rsplit("_", 1)[-1] for path in tmp_path.glob("counter_*.db")}
    assert len(writers) >= 2, f"one process answered everything: {sorted(writers)}"


def test_celery_worker_serves_task_metrics(tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) as the Celery broker")
    port = free_port()
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "config", "worker", "--concurrency", "2", "--loglevel=INFO",
         "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=ROOT,
        env=server_env(
            DJANGO_SETTINGS_MODULE="notifications.tests.worker_settings",
            TEST_EMAIL_FILE_PATH=tmp_path,
            CELERY_METRICS_PORT=port,
            METRICS_TOKEN="worker-scrape-token",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
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
        stop(worker)
        output = worker.stdout.read()
    assert value(samples, "celery_task_duration_seconds_count", **name) == 3, output
    assert value(samples, "celery_tasks_total", state="failure", **name) == 0
