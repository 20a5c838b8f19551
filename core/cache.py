"""The default cache in production: Redis, degrading to per-process memory while Redis is down.

The cache holds only rate-limit counters (django-ratelimit for login/refresh, the
throttle of the authenticated API: ``count_hit``, one round trip). Losing Redis must not take the API down, and must
not switch the limits off either: while Redis errors, each call is served by a
process-local memory cache, so the limits still hold per process (N processes allow
at most N times the limit) until Redis is back. Every fallback is logged.
"""

import logging
import time

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_METHODS = ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many", "clear")
_LOG_EVERY_SECONDS = 10.0


class ReusedClientRedisCacheClient(RedisCacheClient):
    """One ``redis.Redis`` per connection pool instead of a new one for every cache call.

    Django builds a client per call, and a redis-py client builds its response-callback table
    on construction: about 0.2 ms of Python, twice per throttled API request (docs/benchmarks.md).
    The client is a thin, thread-safe wrapper around the pool, which is what holds connections.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client

    def count_hit(self, key, ttl: int) -> int:
        # INCR and EXPIRE NX in one pipeline: one round trip per throttled request (core/throttling.py)
        pipe = self.get_client(key, write=True).pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, ttl, nx=True)
        return pipe.execute()[0]


class ResilientRedisCache(RedisCache):
    def __init__(self, server, params):
        params = {**params, "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1, **params.get("OPTIONS", {})}}
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        self.fallback = LocMemCache(f"resilient-fallback-{id(self)}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._last_logged = 0.0

    def _degraded(self, name: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY_SECONDS:
            self._last_logged = now
            logger.error(
                "cache: Redis unavailable (%s: %s); serving %s from process memory", type(exc).__name__, exc, name
            )

    def count_hit(self, key: str, ttl: int) -> int:
        """Count one hit of ``key`` (a window that expires after ``ttl`` s); the new count."""
        try:
            return self._cache.count_hit(self.make_and_validate_key(key), ttl)
        except (RedisError, OSError) as exc:
            self._degraded("count_hit", exc)
            return count_hit_portable(self.fallback, key, ttl)


def count_hit_portable(cache, key: str, ttl: int) -> int:
    """``count_hit`` on any Django cache (two calls: add, then incr)."""
    if cache.add(key, 1, ttl):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, ttl)
        return 1


def _guarded(name: str):
    def method(self, *args, **kwargs):
        try:
            return getattr(RedisCache, name)(self, *args, **kwargs)
        except (RedisError, OSError) as exc:
            self._degraded(name, exc)
            return getattr(self.fallback, name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in _METHODS:
    setattr(ResilientRedisCache, _name, _guarded(_name))
