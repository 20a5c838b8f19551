"""A burst of socket connects larger than the Redis pool waits for connections instead of failing."""

import asyncio
import uuid

import pytest
from channels_redis.core import RedisChannelLayer
from redis.exceptions import MaxConnectionsError

from core.channel_layer import BlockingPoolRedisChannelLayer

BURST = 60
POOL = 5


async def _burst(layer) -> None:
    # What 60 simultaneous WebSocket handshakes do first (notifications/consumers.py: join the group).
    names = [await layer.new_channel() for _ in range(BURST)]
    await asyncio.gather(*(layer.group_add(f"user.{n}", name) for n, name in enumerate(names)))
    await asyncio.gather(*(layer.group_discard(f"user.{n}", name) for n, name in enumerate(names)))


def _layer(cls, settings, **config):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for the channels-redis layer")
    return cls(
        hosts=[settings.REDIS_URL], prefix=f"{settings.TEST_REDIS_PREFIX}:burst-{uuid.uuid4().hex[:8]}", **config
    )


def test_the_stock_layer_fails_a_burst_larger_than_its_pool(settings):
    layer = _layer(RedisChannelLayer, settings)
    layer.hosts = [{**layer.hosts[0], "max_connections": POOL}]
    with pytest.raises(MaxConnectionsError):
        asyncio.run(_burst(layer))


def test_the_blocking_pool_layer_serves_the_same_burst(settings):
    layer = _layer(BlockingPoolRedisChannelLayer, settings, max_connections=POOL)
    asyncio.run(_burst(layer))
    pool = layer.create_pool(0)
    assert pool.max_connections == POOL


async def _deliveries(sender, receiver) -> list:
    # Two sockets of one process (one channel key, one message listing both), one of another
    # process, and an expired member that the send drops from the group.
    here = [await receiver.new_channel(), await receiver.new_channel()]
    elsewhere = RedisChannelLayer(hosts=receiver.hosts, prefix=receiver.prefix)
    there = await elsewhere.new_channel()
    for name in [*here, there]:
        await receiver.group_add("user.1", name)
    connection = receiver.connection(0)
    await connection.zadd(receiver._group_key("user.1"), {"specific.gone!x": 1})
    await sender.group_send("user.1", {"type": "notification.created", "title": "é", "n": [1, 2]})
    got = [await receiver.receive(name) for name in here] + [await elsewhere.receive(there)]
    members = await connection.zrange(receiver._group_key("user.1"), 0, -1)
    await elsewhere.flush()
    await receiver.flush()
    return [got, len(members)]


def test_the_scripted_group_send_delivers_as_the_stock_one(settings):
    """One EVALSHA per group_send (issue 14) reaches every member as channels-redis's own does."""
    stock = _layer(RedisChannelLayer, settings)
    scripted = BlockingPoolRedisChannelLayer(hosts=stock.hosts, prefix=stock.prefix)
    assert scripted._scripted()
    for sender in (stock, scripted):
        got, members = asyncio.run(_deliveries(sender, RedisChannelLayer(hosts=stock.hosts, prefix=stock.prefix)))
        assert got == [{"type": "notification.created", "title": "é", "n": [1, 2]}] * 3
        assert members == 3


def test_the_scripted_group_send_respects_capacity(settings):
    async def run():
        receiver = RedisChannelLayer(hosts=[settings.REDIS_URL], prefix=prefix, capacity=2)
        sender = BlockingPoolRedisChannelLayer(hosts=[settings.REDIS_URL], prefix=prefix, capacity=2)
        name = await receiver.new_channel()
        await receiver.group_add("user.2", name)
        for n in range(4):
            await sender.group_send("user.2", {"type": "x.y", "n": n})
        got = [await receiver.receive(name) for _ in range(2)]
        await receiver.flush()
        return got

    prefix = _layer(RedisChannelLayer, settings).prefix
    assert asyncio.run(run()) == [{"type": "x.y", "n": 0}, {"type": "x.y", "n": 1}]


def test_the_blocking_group_send_delivers_as_the_async_one(settings):
    """``group_send_blocking`` (the after-commit pushes, issue 14): the same script from the calling
    thread, one message or several (a pipeline), reaching every member of each group."""
    stock = _layer(RedisChannelLayer, settings)
    scripted = BlockingPoolRedisChannelLayer(hosts=stock.hosts, prefix=stock.prefix)

    async def members(receiver):
        names = {g: await receiver.new_channel() for g in ("user.a", "user.b")}
        for group, name in names.items():
            await receiver.group_add(group, name)
        return names

    async def drain(receiver, names, counts):
        got = {g: [await receiver.receive(names[g]) for _ in range(counts[g])] for g in names}
        await receiver.flush()
        return got

    receiver = RedisChannelLayer(hosts=stock.hosts, prefix=stock.prefix)
    names = asyncio.run(members(receiver))
    assert scripted.group_send_blocking([("user.a", {"type": "x.y", "n": 1})], timeout=5)
    sent = [("user.a", {"type": "x.y", "n": 2}), ("user.b", {"type": "x.y", "title": "é"})]
    assert scripted.group_send_blocking(sent, timeout=5)
    got = asyncio.run(drain(receiver, names, {"user.a": 2, "user.b": 1}))
    assert got == {
        "user.a": [{"type": "x.y", "n": 1}, {"type": "x.y", "n": 2}],
        "user.b": [{"type": "x.y", "title": "é"}],
    }


def test_the_blocking_group_send_declines_what_the_script_does_not_reproduce(settings):
    layer = _layer(BlockingPoolRedisChannelLayer, settings, channel_capacity={"user.*": 5})
    assert not layer._scripted()
    assert layer.group_send_blocking([("user.a", {"type": "x.y"})], timeout=5) is False
    assert layer._blocking_script is None  # nothing connected, nothing sent
