"""Celery worker metrics: task durations and outcomes, served on ``CELERY_METRICS_PORT`` (docs/operations.md).

The worker runs no web server, so it serves its own scrape endpoint from the main process; its
pool processes write their values to the multiprocess directory that ``config/celery.py`` sets.
"""

from __future__ import annotations

import logging
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from prometheus_client import multiprocess

from core import metrics

logger = logging.getLogger(__name__)

_started: dict[str, float] = {}


def started(task_id: str | None) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


def finished(task_id: str | None, name: str, state: str) -> None:
    began = _started.pop(task_id, None) if task_id else None
    if began is not None:
        metrics.CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - began)
    metrics.CELERY_TASKS.labels(task=name, state=state.lower()).inc()


def process_gone(pid: int) -> None:
    if metrics.multiprocess_dir():
        multiprocess.mark_process_dead(pid)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True


def app(environ, start_response):
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    headers = {"authorization": environ.get("HTTP_AUTHORIZATION", "")}
    forwarded = "HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if not metrics.scrape_allowed(headers["authorization"], environ.get("REMOTE_ADDR", ""), forwarded=forwarded):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"metrics need the bearer token (METRICS_TOKEN) or a loopback client\n"]
    body = generate_latest(metrics.scrape_registry(with_database=False))
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [body]


def serve() -> WSGIServer | None:
    """Start the scrape endpoint in a thread of the worker's main process (``CELERY_METRICS_PORT``; 0 = off)."""
    port = settings.CELERY_METRICS_PORT
    if not port:
        return None
    server = make_server(
        settings.CELERY_METRICS_ADDR, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="celery-metrics", daemon=True).start()
    logger.info("worker metrics on http://%s:%s/metrics", settings.CELERY_METRICS_ADDR, port)
    return server
