"""The one after-commit path: everything that leaves the process goes through here.

WebSocket pushes, Celery tasks and e-mails are sent only once the transaction
that caused them has committed (never from inside it, never for a rollback).
A failure to send is logged and swallowed: the database row that caused it is
the source of truth and a periodic job or a reconnecting client catches up.

While Redis is known to be down (a push or an enqueue failed), a per-process circuit breaker
skips the channel layer or the broker for ``BREAKER_RETRY_SECONDS`` instead of letting every
committing request wait for the connect timeout (issue 19.10): the pushes are best effort and
the only queued tasks are e-mails, which the periodic sweep sends once Redis is back.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as BrokerError
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


os.register_at_fork(after_in_child=_forget_loop_in_child)
