"""In-process periodic runner for the embedded default (no broker, no Celery beat).

``make run`` serves everything from one daphne process on SQLite. With
``settings.EMBEDDED_SCHEDULER`` true (``not CELERY_BROKER_URL`` and env
``EMBEDDED_SCHEDULER=true``, which ``make run`` sets) ``CoreConfig.ready()`` starts
one daemon thread that runs every task of ``core/periodic.py`` in-process at its
interval: the same list that ``manage.py setup_periodic_tasks`` installs for beat.

It never starts under pytest, in management commands other than ``runserver``
(migrate, seed_demo, shell...), or in the autoreloader's parent process. The tasks
themselves are safe to run concurrently and to repeat, so a second process running
the same schedule would do no harm, only redundant work.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from importlib import import_module

from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)

_started: EmbeddedScheduler | None = None
_lock = threading.Lock()


def _resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def _fresh_connection() -> None:
    # Like a request boundary: drop a broken or expired connection (never inside a transaction).
    if not connection.in_atomic_block:
        close_old_connections()


class EmbeddedScheduler:
    """Runs ``periodic_tasks()`` entries at their intervals, one at a time, in one thread."""

    def __init__(self, tasks: dict[str, tuple[str, int]] | None = None, *, tick_seconds: float = 1.0) -> None:
        if tasks is None:
            from core.periodic import periodic_tasks

            tasks = periodic_tasks()
        self.tasks = tasks
        self.tick_seconds = tick_seconds
        self.next_run = dict.fromkeys(tasks, 0.0)  # everything runs once right after start
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.runs: dict[str, int] = dict.fromkeys(tasks, 0)

    def run_due(self, now: float | None = None) -> list[str]:
        """Run every task whose time has come; returns their names."""
        now = time.monotonic() if now is None else now
        ran = []
        for name, (path, seconds) in self.tasks.items():
            if now < self.next_run[name]:
                continue
            self.next_run[name] = now + max(int(seconds), 1)
            _fresh_connection()
            try:
                task = _resolve(path)
                result = task.run() if hasattr(task, "run") else task()
                logger.debug("embedded periodic task %s: %s", name, result)
            except Exception:
                logger.exception("embedded periodic task %s failed", name)
            finally:
                _fresh_connection()
            self.runs[name] += 1
            ran.append(name)
        return ran

    def loop(self) -> None:
        while not self.stop_event.is_set():
            self.run_due()
            self.stop_event.wait(self.tick_seconds)

    def start(self) -> EmbeddedScheduler:
        self.thread = threading.Thread(target=self.loop, name="embedded-scheduler", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 5) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)


def should_start(argv: list[str] | None = None, environ=None) -> bool:
    """True only in a serving process of the embedded default (see the module docstring)."""
    if not getattr(settings, "EMBEDDED_SCHEDULER", False) or "pytest" in sys.modules:
        return False
    return is_serving_process(sys.argv if argv is None else argv, os.environ if environ is None else environ)


def is_serving_process(argv: list[str], environ) -> bool:
    """Is this process serving HTTP (daphne, uvicorn, gunicorn, ``manage.py runserver``'s server)?"""
    program = os.path.basename(argv[0]) if argv else ""
    if "pytest" in program:
        return False
    if program in ("manage.py", "django-admin", "__main__.py"):
        if (argv[1] if len(argv) > 1 else "") != "runserver":
            return False  # migrate, seed_demo, shell, sla_scan...
        # the autoreloader runs the server in a child with RUN_MAIN=true; the parent only watches files
        return environ.get("RUN_MAIN") == "true" or "--noreload" in argv
    # daphne/uvicorn/gunicorn serving the app; never a Celery worker/beat (they have the real schedule)
    return not program.startswith("celery")


def maybe_start() -> EmbeddedScheduler | None:
    """Called from ``CoreConfig.ready()``: start the runner once per process when it should run."""
    global _started
    if not should_start():
        return None
    with _lock:
        if _started is None:
            _started = EmbeddedScheduler().start()
            logger.info("embedded scheduler started: %s", ", ".join(_started.tasks))
    return _started
