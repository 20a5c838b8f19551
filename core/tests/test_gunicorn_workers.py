"""gunicorn as the Procfile runs it (config/gunicorn.conf.py): the application preloaded in the
master, workers recycled after WEB_MAX_REQUESTS and forked again from it, connections spread."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from core.tests.servers import gunicorn_server, metric_writers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_recycled_workers_are_forked_from_the_preloaded_application_and_serve_at_once(tmp_path):
    # jitter up to 5: every worker is replaced several times below
    with gunicorn_server(tmp_path, WEB_CONCURRENCY=2, WEB_THREADS=2, WEB_MAX_REQUESTS=10) as base:

        def ready(_):  # the database and Redis, on a new connection each time
            return httpx.get(f"{base}/health/ready/", timeout=30).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(ready, range(120)))
    assert statuses == [200] * 120  # no request lost to a restart or to a connection shared by two processes
    writers = metric_writers(tmp_path)
    assert len(writers) >= 6, f"the workers were not recycled: {sorted(writers)}"


def test_kept_alive_connections_spread_over_the_workers(tmp_path):
    """A worker takes at most twice its threads in connections (WEB_WORKER_CONNECTIONS): eight
    clients that keep their connections open are served by both workers, never all by one."""
    # at most 4 connections each
    with gunicorn_server(tmp_path, WEB_CONCURRENCY=2, WEB_THREADS=2) as base:
        clients = [httpx.Client(base_url=base, timeout=30) for _ in range(8)]
        try:
            for _ in range(3):  # each client keeps its one connection open across its requests
                assert all(client.get("/health/live/").status_code == 200 for client in clients)
        finally:
            for client in clients:
                client.close()
    writers = metric_writers(tmp_path)
    assert len(writers) >= 2, f"one worker took every connection: {sorted(writers)}"
