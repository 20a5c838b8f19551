"""The production channel layer: channels-redis whose connection pool waits instead of failing,
and whose ``group_send`` is one Lua script (issue 14: CPU per decision).

channels-redis builds redis-py's plain pool, which raises ``MaxConnectionsError`` as soon as
more commands are in flight than it has connections (100 by default). A reconnect storm, such
as every browser of a large office reconnecting after a deploy, then answers WebSocket
handshakes with HTTP 500: found by the 100-socket benchmark (docs/benchmarks.md). A blocking
pool of the same size makes the surplus wait its turn (up to ``timeout`` seconds) instead.
"""

import logging
import time

import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer

logger = logging.getLogger(__name__)


# One round trip per group_send instead of channels-redis's three or four (ZREMRANGEBYSCORE,
# ZRANGE, a pipeline of ZREMRANGEBYSCOREs, an EVAL that re-sends its script text): the group's
# members are read, grouped by channel key, and the message queued on each key inside Redis.
# The message is serialized once in Python without its routing list; Lua appends the list (the
# ``__asgi_channel__`` value channels-redis's receive reads) per key with cmsgpack.
_GROUP_SEND_LUA = """
local now, cutoff, expiry = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local capacity, prefix, head = tonumber(ARGV[4]), ARGV[5], ARGV[6]
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, cutoff)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local order, channels = {}, {}
for _, name in ipairs(members) do
    local bang = string.find(name, '!', 1, true)
    local key = prefix .. (bang and string.sub(name, 1, bang) or name)
    if channels[key] == nil then
        channels[key] = {}
        order[#order + 1] = key
    end
    table.insert(channels[key], name)
end
local over = 0
for _, key in ipairs(order) do
    redis.call('ZREMRANGEBYSCORE', key, 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', key, '-inf', '+inf') < capacity then
        redis.call('ZADD', key, now, head .. cmsgpack.pack(channels[key]))
        redis.call('EXPIRE', key, expiry)
    else
        over = over + 1
    end
end
return {#members, over}
"""


class BlockingPoolRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, max_connections: int = 100, pool_timeout: float = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_connections, self.pool_timeout = max_connections, pool_timeout
        self._group_send_script = None

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

    def _scripted(self) -> bool:
        # One Redis, msgpack without encryption, one capacity: the cases the script reproduces.
        return (
            self.ring_size == 1
            and not self.channel_capacity
            and getattr(self._serializer, "crypter", None) is None
            and type(self._serializer).__name__ == "MsgPackSerializer"
        )

    async def group_send(self, group, message):
        if not self._scripted():
            return await super().group_send(group, message)
        assert self.require_valid_group_name(group), "Group name not valid"
        assert "__asgi_channel__" not in message
        connection = self.connection(0)
        if self._group_send_script is None:
            self._group_send_script = connection.register_script(_GROUP_SEND_LUA)
        # msgpack writes the map in insertion order: the routing key last, its nil value the last byte.
        head = self.serialize({**message, "__asgi_channel__": None})[:-1]
        now = time.time()
        members, over = await self._group_send_script(
            keys=[self._group_key(group)],
            args=[now, int(now) - self.group_expiry, int(self.expiry), self.capacity, self.prefix, head],
            client=connection,
        )
        if over:
            logger.info("%s of %s channels over capacity in group %s", over, members, group)
