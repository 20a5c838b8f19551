"""The one after-commit path: everything that leaves the process goes through here.

WebSocket pushes, Celery tasks and e-mails are sent only once the transaction
that caused them has committed (never from inside it, never for a rollback).
A failure to send is logged and swallowed: the database row that caused it is
the source of truth and a periodic job or a reconnecting client catches up.

While Redis is known to be down (a push or an enqueue failed), a per-process circuit breaker
skips the channel layer or the broker for ``BREAKER_RETRY_SECONDS`` instead of letting every
committing request wait for the connect timeout (issue 19.10): the pushes are best effort and
the only queued tasks are e-mails, which the periodic sweep sends once Redis is back.

The e-mails of a notification (``enqueue_batch``) do not cost a Celery publish each (issue 14:
about 1 ms of CPU per decision): a per-process dispatcher collects their ids after commit and a
daemon thread publishes one message per ``EMAIL_DISPATCH_WINDOW_MS`` with all of them. The rows
are the outbox: ids not yet published when the process dies are pending rows the sweep sends.
"""

import asyncio
import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as BrokerError
from opentelemetry import context as trace_context
from redis.exceptions import RedisError

from core.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS = 5
BREAKER_RETRY_SECONDS = 5
_OUTAGE_ERRORS = (RedisError, OSError, BrokerError)  # TimeoutError and ConnectionError are OSErrors
layer_breaker = CircuitBreaker(BREAKER_RETRY_SECONDS, subject="push", fallback="pushes skipped")
broker_breaker = CircuitBreaker(BREAKER_RETRY_SECONDS, subject="enqueue", fallback="tasks skipped")


def on_commit(fn: Callable[[], None], *, what: str) -> None:
    def _run() -> None:
        try:
            fn()
        except Exception:
            logger.exception("after-commit delivery failed: %s", what)

    transaction.on_commit(_run)


def enqueue(task, *args, **kwargs) -> None:
    """Queue a Celery task after commit (ids in, the task re-reads the database).

    ``task`` is the task or its dotted path (``"notifications.tasks.send_email_deliveries"``): a
    service named by the task it queues then need not import the tasks module that imports it.
    """
    enqueue_in(None, task, *args, **kwargs)


def enqueue_in(countdown: float | None, task, *args, **kwargs) -> None:
    """``enqueue``, the task to run ``countdown`` seconds after it is queued (a retry's backoff)."""
    what = f"task {task if isinstance(task, str) else task.name}"

    def send() -> None:
        resolved = import_string(task) if isinstance(task, str) else task
        resolved.apply_async(args=args, kwargs=kwargs, countdown=countdown)

    on_commit(lambda: _guarded(broker_breaker, send, what), what=what)


def enqueue_batch(task: str, ids: list[str]) -> None:
    """Queue ``task(ids)`` after commit, merged with the ids of other commits of the same window.

    For tasks whose one argument is a list of row ids and that are safe to run twice per id
    (``send_email_deliveries``): the ids of every commit in the next ``EMAIL_DISPATCH_WINDOW_MS``
    leave in one message (at most ``BATCH_MAX_IDS`` ids each), from the dispatcher's thread.
    A window of 0, or Celery running tasks inline (the embedded default, unit tests), publishes
    at commit as ``enqueue`` does.
    """
    on_commit(lambda: dispatcher.add(task, ids), what=f"task {task}")


def flush_dispatch() -> None:
    """Publish what the dispatcher holds now, in the calling thread (process exit, tests, bench)."""
    dispatcher.flush()


@functools.cache
def _task(path: str):
    # The task itself, not the proxy ``shared_task`` returns: resolving it costs as much as the rest of add().
    task = import_string(path)
    return task._get_current_object() if hasattr(task, "_get_current_object") else task


BATCH_MAX_IDS = 100  # a burst still spreads over several workers instead of one long task


def _publish_batch(task: str, ids: list[str]) -> None:
    what = f"task {task} ({len(ids)} id(s))"
    try:
        _guarded(broker_breaker, lambda: _task(task).apply_async(args=(ids,)), what)
    except Exception:
        # The rows are pending: the sweep sends them once the broker is back.
        logger.exception("after-commit delivery failed: %s", what)


class BatchDispatcher:
    """Merges the after-commit publications of ``enqueue_batch`` per task, one message per window."""

    def __init__(self) -> None:
        self._start_fresh()

    def _start_fresh(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._sending = threading.Lock()  # one flush at a time: flush() returns once all has left
        self._pending: dict[str, list[str]] = {}
        # the trace context of the commit that opened each task's batch: its message continues that
        # trace (a span cannot have several parents; the other commits' traces end at their commit)
        self._contexts: dict[str, object] = {}
        self._closes_at = 0.0
        self._thread: threading.Thread | None = None

    def add(self, task: str, ids: list[str]) -> None:
        if settings.EMAIL_DISPATCH_WINDOW_MS <= 0 or _task(task).app.conf.task_always_eager:
            _publish_batch(task, list(ids))
            return
        with self._lock:
            if not self._pending:  # a window opens: one wake-up of the thread per window, not per commit
                self._closes_at = time.monotonic() + settings.EMAIL_DISPATCH_WINDOW_MS / 1000
                self._wake.notify()
            if task not in self._pending:
                self._contexts[task] = trace_context.get_current()
            self._pending.setdefault(task, []).extend(ids)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="after-commit-dispatch", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        with self._sending:
            with self._lock:
                pending, self._pending = self._pending, {}
                contexts, self._contexts = self._contexts, {}
            for task, ids in pending.items():
                token = trace_context.attach(contexts[task])
                try:
                    for start in range(0, len(ids), BATCH_MAX_IDS):
                        _publish_batch(task, ids[start : start + BATCH_MAX_IDS])
                finally:
                    trace_context.detach(token)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._wake.wait()
                # Until the window closes (a window opened after a flush() moves the deadline and wakes us).
                while self._pending and (left := self._closes_at - time.monotonic()) > 0:
                    self._wake.wait(left)
            try:
                self.flush()
            except Exception:  # the thread must outlive any failure; the rows wait for the sweep
                logger.exception("after-commit dispatcher: flush failed")

    def forget_in_child(self) -> None:
        # A forked child inherits the ids (its parent publishes them) and the locks, not the thread.
        self._start_fresh()


dispatcher = BatchDispatcher()
atexit.register(dispatcher.flush)


def _guarded(breaker: CircuitBreaker, send: Callable[[], object], what: str) -> None:
    if not breaker.allows():
        logger.warning("after-commit delivery skipped while Redis is down: %s", what)
        return
    try:
        send()
    except _OUTAGE_ERRORS as exc:
        breaker.failed(what, exc)
        raise
    breaker.succeeded()


def push_to_group(group: str, message: dict) -> None:
    """Send a Channels group message after commit."""
    push_many([(group, message)])


def push_many(messages: list[tuple[str, dict]]) -> None:
    """Send several Channels group messages after commit, together."""
    what = f"push to {len(messages)} group(s)"
    on_commit(lambda: _guarded(layer_breaker, lambda: send_now(messages), what), what=what)


def send_now(messages: list[tuple[str, dict]]) -> None:
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all() -> None:
        await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))

    if isinstance(layer, InMemoryChannelLayer):
        # Its queues belong to the serving process's event loop: async_to_sync runs there.
        async_to_sync(send_all)()
    elif getattr(layer, "group_send_blocking", None) and layer.group_send_blocking(
        messages, timeout=PUSH_TIMEOUT_SECONDS
    ):
        return  # the production layer sent them from this thread (core/channel_layer.py, issue 14)
    else:
        # A network layer keeps a connection pool per event loop. From sync code with no loop
        # (WSGI workers, Celery, commands) async_to_sync would make a new loop, and so a new Redis
        # connection, for every push; one long-lived loop per process reuses them.
        asyncio.run_coroutine_threadsafe(send_all(), _push_loop()).result(timeout=PUSH_TIMEOUT_SECONDS)


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _push_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-push", daemon=True).start()
            _loop = loop
        return _loop


def _forget_loop_in_child() -> None:
    # A forked child (Celery prefork, gunicorn --preload) inherits the variable, not the thread.
    global _loop
    _loop = None
    dispatcher.forget_in_child()


os.register_at_fork(after_in_child=_forget_loop_in_child)
