"""gunicorn for the REST API and admin (WSGI); WebSockets are served by the ``ws`` process (ASGI).

Figures behind these defaults: docs/benchmarks.md ("Serving"). Every value can be set from the
environment (``WEB_CONCURRENCY``, ``WEB_THREADS``, ``PORT``...), as PaaS platforms expect.
"""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("WEB_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Threaded workers, one per core with four threads each: measured ahead of sync workers (2 x cores)
# and of ASGI servers for this API (docs/benchmarks.md "Serving"); a view is CPU plus short
# database and Redis waits, which threads overlap, and gthread keeps client connections alive.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
threads = int(os.environ.get("WEB_THREADS", "4"))
# At most twice as many connections per worker as it has threads (in flight and kept alive): a
# kept-alive connection stays with the worker that accepted it, and a worker is bound to one core
# by its GIL, so connections must spread over the workers. With gunicorn's 1,000 one worker took
# all 16 of a load generator's connections and left the other core idle (docs/benchmarks.md,
# issue 14). A worker at its cap stops accepting and closes the connections it would keep alive
# beyond its threads, so a waiting client is taken as soon as a request ends.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", 2 * threads))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# The master loads the application once and forks workers from it: a worker (re)started is
# serving within milliseconds instead of the seconds its imports take, and the workers share
# the master's memory pages until they write them.
preload_app = os.environ.get("WEB_PRELOAD", "true").strip().lower() not in ("0", "false", "no", "off")
# Recycle workers now and then so a slow leak in any dependency cannot grow without bound. The
# jitter is wide on purpose: workers share the load evenly, so with a narrow one they all reach
# the limit within the same second and restart together (measured: seconds without a worker).
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 2
accesslog = os.environ.get("WEB_ACCESS_LOG", "-")
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Above the app's own limits (REQUEST_MAX_URL_CHARS 4096, REQUEST_MAX_HEADER_BYTES 8190,
# REQUEST_MAX_HEADERS 100 in config/settings.py), so an over-long URL or header reaches the app and
# gets the JSON envelope (414/431) rather than gunicorn's HTML page. 8190 is gunicorn's maximum
# request line; longer lines are refused by the proxy first (deploy/nginx.conf).
limit_request_line = 8190
limit_request_field_size = 16380
limit_request_fields = 200

# Metrics from every worker process are merged at scrape time (prometheus_client multiprocess mode):
# each worker writes its values to files in this directory. Set before any worker imports the app.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-web-")


def on_starting(server):
    # Values of a previous run are stale: a restart starts the counters from zero, as Prometheus expects.
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def pre_fork(server, worker):
    # Nothing the master opened while loading the application may be shared with a worker: each
    # worker opens its own database connections (a socket used by two processes corrupts both).
    if preload_app:
        from django.db import connections

        connections.close_all()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:  # the temporary directory made above; a configured one is the operator's
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
