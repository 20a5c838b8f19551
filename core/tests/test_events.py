"""The after-commit path on a network channel layer, from code with no event loop (WSGI, Celery)."""

import base64
import json
import os
import threading
import time

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


def _two_transitions(group):
    def transition(n):
        with transaction.atomic():
            events.push_many([(group, {"type": "x.y", "n": n}), (group, {"type": "x.y", "n": n + 1})])

    _in_plain_thread(lambda: transition(1))
    _in_plain_thread(lambda: transition(3))


def test_pushes_leave_after_commit_in_one_batch_from_the_committing_thread(layer, monkeypatch):
    """The production layer sends from the committing thread (issue 14): no event loop is started."""
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("events-test", channel)
    monkeypatch.setattr(events, "_push_loop", lambda: pytest.fail("the production layer needs no event loop"))
    _two_transitions("events-test")
    assert sorted(_receive(layer, channel, 4)) == [1, 2, 3, 4]


def test_another_network_layer_pushes_on_one_long_lived_loop(redis_layer, settings):
    settings.CHANNEL_LAYERS = {
        "default": {**redis_layer["default"], "BACKEND": "channels_redis.core.RedisChannelLayer"}
    }
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("events-loop", channel)
    _in_plain_thread(lambda: events.push_to_group("events-loop", {"type": "x.y", "n": 1}))
    loop = events._loop
    _two_transitions("events-loop")
    assert events._loop is loop and loop.is_running()  # reused: no new loop (and Redis connection) per push
    assert sorted(_receive(layer, channel, 5)) == [1, 1, 2, 3, 4]


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


# --- the batched e-mail hand-off (enqueue_batch, issue 14) ------------------------------------

BATCHED = "notifications.tasks.send_email_deliveries"


@pytest.fixture
def broker(settings):
    """Celery publishing for real to the session's Redis (nothing consumes it); the queue emptied after."""
    from notifications.tests.conftest import celery_broker

    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) as the Celery broker")
    with celery_broker(settings.REDIS_URL) as app, app.connection_for_write() as conn:
        client, key = conn.default_channel.client, f"{settings.TEST_REDIS_PREFIX}:celery"
        client.delete(key)
        yield lambda: _published(client, key)
        events.flush_dispatch()
        client.delete(key)


def _published(client, key) -> list[tuple[str, list]]:
    """(task name, first argument) of every message in the queue, oldest first."""
    messages = [json.loads(raw) for raw in reversed(client.lrange(key, 0, -1))]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0][0]) for m in messages]


def _commit(*ids: str) -> None:
    with transaction.atomic():
        events.enqueue_batch(BATCHED, list(ids))


def test_batched_ids_of_several_commits_leave_in_one_message_from_the_dispatcher(broker, settings):
    settings.EMAIL_DISPATCH_WINDOW_MS = 60_000
    _commit("flushed")
    events.flush_dispatch()  # the thread, waiting for that long window, must not hold up the next one
    assert broker() == [(BATCHED, ["flushed"])]
    settings.EMAIL_DISPATCH_WINDOW_MS = 300
    for n in range(5):
        _commit(f"id-{n}")
    with pytest.raises(RuntimeError), transaction.atomic():
        events.enqueue_batch(BATCHED, ["rolled-back"])
        raise RuntimeError("the change fails")
    assert len(broker()) == 1  # nothing at commit: the window is open
    deadline = time.monotonic() + 10
    while len(broker()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker()[1:] == [(BATCHED, [f"id-{n}" for n in range(5)])]

    _commit("id-5")  # the next window: the thread sleeps between windows and wakes for it
    deadline = time.monotonic() + 10
    while len(broker()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker()[2:] == [(BATCHED, ["id-5"])]


def test_a_window_of_zero_publishes_at_each_commit(broker, settings):
    settings.EMAIL_DISPATCH_WINDOW_MS = 0
    _commit("a")
    _commit("b", "c")
    assert broker() == [(BATCHED, ["a"]), (BATCHED, ["b", "c"])]


def test_a_large_window_is_split_into_messages_of_at_most_batch_max_ids(broker, settings):
    settings.EMAIL_DISPATCH_WINDOW_MS = 60_000
    ids = [f"id-{n}" for n in range(events.BATCH_MAX_IDS * 2 + 5)]
    _commit(*ids[:150])
    _commit(*ids[150:])
    events.flush_dispatch()  # as at process exit
    published = broker()
    assert [len(args) for _, args in published] == [events.BATCH_MAX_IDS, events.BATCH_MAX_IDS, 5]
    assert [i for _, args in published for i in args] == ids


def test_a_forked_child_leaves_the_held_ids_to_its_parent(broker, settings):
    settings.EMAIL_DISPATCH_WINDOW_MS = 60_000
    _commit("held")
    pid = os.fork()
    if pid == 0:  # the child: it must not publish the parent's ids (at exit or ever)
        os._exit(0 if not events.dispatcher._pending else 1)
    assert os.waitpid(pid, 0)[1] == 0
    events.flush_dispatch()
    assert broker() == [(BATCHED, ["held"])]
