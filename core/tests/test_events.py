"""The after-commit path on a network channel layer, from code with no event loop (WSGI, Celery)."""

import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from core import events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer(redis_layer):
    return get_channel_layer()


def _in_plain_thread(fn):
    """Run ``fn`` in a thread that has no event loop, as a WSGI worker or a Celery task does."""
    errors = []

    def target():
        try:
            fn()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    if errors:
        raise errors[0]


def _receive(layer, channel, count: int) -> list:
    async def collect():  # one event loop for all receives: the layer buffers per loop
        return [(await layer.receive(channel))["n"] for _ in range(count)]

    return async_to_sync(collect)()


def test_pushes_leave_after_commit_in_one_batch_on_one_long_lived_loop(layer):
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("events-test", channel)

    def transition(n):
        with transaction.atomic():
            events.push_many([("events-test", {"type": "x.y", "n": n}), ("events-test", {"type": "x.y", "n": n + 1})])

    _in_plain_thread(lambda: transition(1))
    loop = events._loop
    _in_plain_thread(lambda: transition(3))
    assert events._loop is loop and loop.is_running()  # reused: no new loop (and Redis connection) per push
    assert sorted(_receive(layer, channel, 4)) == [1, 2, 3, 4]


def test_a_rolled_back_transaction_pushes_nothing(layer):
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("events-rollback", channel)

    def transition():
        with pytest.raises(RuntimeError), transaction.atomic():
            events.push_to_group("events-rollback", {"type": "x.y", "n": "lost"})
            raise RuntimeError("the change fails")
        with transaction.atomic():
            events.push_to_group("events-rollback", {"type": "x.y", "n": "kept"})

    _in_plain_thread(transition)
    assert _receive(layer, channel, 1) == ["kept"]


def test_a_hanging_redis_is_skipped_after_one_failed_push(black_hole, settings):
    """Issue 19.10: one push meets the hang (and is logged); the next commits skip the channel
    layer while the breaker is open instead of each waiting for the timeout."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layer.BlockingPoolRedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{black_hole.port}/0", "socket_timeout": 0.3}]},
        }
    }

    def transitions():
        for n in range(5):
            with transaction.atomic():
                events.push_to_group("events-hang", {"type": "x.y", "n": n})

    _in_plain_thread(transitions)
    assert len(black_hole.accepted) == 1
    assert events.layer_breaker.is_open
