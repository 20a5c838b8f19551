"""The one after-commit path: everything that leaves the process goes through here.

WebSocket pushes, Celery tasks and e-mails are sent only once the transaction
that caused them has committed (never from inside it, never for a rollback).
A failure to send is logged and swallowed: the database row that caused it is
the source of truth and a periodic job or a reconnecting client catches up.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.db import transaction

logger = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS = 5


def on_commit(fn: Callable[[], None], *, what: str) -> None:
    def _run() -> None:
        try:
            fn()
        except Exception:
            logger.exception("after-commit delivery failed: %s", what)

    transaction.on_commit(_run)


def enqueue(task, *args, **kwargs) -> None:
    """Queue a Celery task after commit (ids in, the task re-reads the database)."""
    on_commit(lambda: task.apply_async(args=args, kwargs=kwargs), what=f"task {task.name}")


def push_to_group(group: str, message: dict) -> None:
    """Send a Channels group message after commit."""
    push_many([(group, message)])


def push_many(messages: list[tuple[str, dict]]) -> None:
    """Send several Channels group messages after commit, together."""
    on_commit(lambda: send_now(messages), what=f"push to {len(messages)} group(s)")


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
