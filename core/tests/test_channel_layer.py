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
