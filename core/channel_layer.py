"""The production channel layer: channels-redis whose connection pool waits instead of failing,
and whose ``group_send`` is one Lua script (issue 14: CPU per decision).

channels-redis builds redis-py's plain pool, which raises ``MaxConnectionsError`` as soon as
more commands are in flight than it has connections (100 by default). A reconnect storm, such
as every browser of a large office reconnecting after a deploy, then answers WebSocket
handshakes with HTTP 500: found by the 100-socket benchmark (docs/benchmarks.md). A blocking
pool of the same size makes the surplus wait its turn (up to ``timeout`` seconds) instead.
"""

import logging
import threading
import time

import redis
import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer
from redis.backoff import NoBackoff
from redis.retry import Retry

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
        self._blocking_script = None  # group_send_blocking's: a plain redis-py client's script
        self._blocking_lock = threading.Lock()

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

    def _script_call(self, group, message) -> tuple[list, list]:
        """(keys, args) of the script for ``group_send(group, message)``."""
        assert self.require_valid_group_name(group), "Group name not valid"
        assert "__asgi_channel__" not in message
        # msgpack writes the map in insertion order: the routing key last, its nil value the last byte.
        head = self.serialize({**message, "__asgi_channel__": None})[:-1]
        now = time.time()
        args = [now, int(now) - self.group_expiry, int(self.expiry), self.capacity, self.prefix, head]
        return [self._group_key(group)], args

    @staticmethod
    def _log_over(group, members, over) -> None:
        if over:
            logger.info("%s of %s channels over capacity in group %s", over, members, group)

    async def group_send(self, group, message):
        if not self._scripted():
            return await super().group_send(group, message)
        keys, args = self._script_call(group, message)
        connection = self.connection(0)
        if self._group_send_script is None:
            self._group_send_script = connection.register_script(_GROUP_SEND_LUA)
        members, over = await self._group_send_script(keys=keys, args=args, client=connection)
        self._log_over(group, members, over)

    # The after-commit pushes (core.events.send_now) come from threads without an event loop. Sent
    # through the asyncio client they cost a hop to a loop thread and the asyncio machinery around
    # one EVALSHA: 0.8 ms of CPU per push, against 0.25 ms for the same script from the calling
    # thread with redis-py's plain client (issue 14, a tenth of a decision's Python time).
    def group_send_blocking(self, messages: list[tuple[str, dict]], *, timeout: float) -> bool:
        """``group_send`` of each (group, message) from the calling thread, without an event loop:
        one round trip (a pipeline for several). False, having sent nothing, where the script does
        not apply (``group_send`` it through the event loop then). No retry: a push is best effort,
        and ``timeout`` bounds the wait on a hung Redis."""
        if not self._scripted() or "address" not in self.hosts[0]:
            return False
        script = self._blocking_script or self._blocking_client(timeout)
        calls = [self._script_call(group, message) for group, message in messages]
        if len(calls) == 1:
            results = [script(keys=calls[0][0], args=calls[0][1])]
        else:
            pipe = script.registered_client.pipeline(transaction=False)
            for keys, args in calls:
                script(keys=keys, args=args, client=pipe)
            results = pipe.execute()
        for (group, _), (members, over) in zip(messages, results, strict=True):
            self._log_over(group, members, over)
        return True

    def _blocking_client(self, timeout: float):
        with self._blocking_lock:
            if self._blocking_script is None:
                host = dict(self.hosts[0])
                address = host.pop("address")
                host["socket_timeout"] = min(host.get("socket_timeout") or timeout, timeout)
                host.setdefault("socket_connect_timeout", 2)
                pool = redis.BlockingConnectionPool.from_url(
                    address,
                    max_connections=self.max_connections,
                    timeout=self.pool_timeout,
                    retry=Retry(NoBackoff(), 0),
                    **host,
                )
                self._blocking_script = redis.Redis(connection_pool=pool).register_script(_GROUP_SEND_LUA)
            return self._blocking_script
