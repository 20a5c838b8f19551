"""The one after-commit path: everything that leaves the process goes through here.

WebSocket pushes, Celery tasks and e-mails are sent only once the transaction
that caused them has committed (never from inside it, never for a rollback).
A failure to send is logged and swallowed: the database row that caused it is
the source of truth and a periodic job or a reconnecting client catches up.
"""

import logging
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.db import transaction

logger = logging.getLogger(__name__)


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

    def _send() -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, message)

    on_commit(_send, what=f"push {group}")
