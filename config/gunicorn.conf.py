"""gunicorn for the REST API and admin (WSGI); WebSockets are served by the ``ws`` process (ASGI).

Figures behind these defaults: docs/benchmarks.md ("Serving"). Every value can be set from the
environment (``WEB_CONCURRENCY``, ``WEB_THREADS``, ``PORT``...), as PaaS platforms expect.
"""

import multiprocessing
import os

bind = os.environ.get("WEB_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Sync workers: a Django request is CPU plus short database waits, so one process per request
# in flight and about two per core keeps the cores busy without queueing behind the GIL.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = os.environ.get("WEB_WORKER_CLASS", "sync")
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak in any dependency cannot grow without bound.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
accesslog = os.environ.get("WEB_ACCESS_LOG", "-")
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
