"""The production channel layer: channels-redis whose connection pool waits instead of failing.

channels-redis builds redis-py's plain pool, which raises ``MaxConnectionsError`` as soon as
more commands are in flight than it has connections (100 by default). A reconnect storm, such
as every browser of a large office reconnecting after a deploy, then answers WebSocket
handshakes with HTTP 500: found by the 100-socket benchmark (docs/benchmarks.md). A blocking
pool of the same size makes the surplus wait its turn (up to ``timeout`` seconds) instead.
"""

import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer


class BlockingPoolRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, max_connections: int = 100, pool_timeout: float = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_connections, self.pool_timeout = max_connections, pool_timeout

    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinel or explicit host/port: channels-redis's own pool
            return super().create_pool(index)
        # A hung Redis must surface as an error (the WebSocket consumer survives and retries it,
        # notifications/consumers.py) instead of blocking forever: above the 5 s BZPOPMIN of receive.
        host.setdefault("socket_timeout", self.brpop_timeout + 5)
        host.setdefault("socket_connect_timeout", 2)
        return aioredis.BlockingConnectionPool.from_url(
            host.pop("address"), max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )
