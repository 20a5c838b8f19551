"""The default cache in production: Redis, degrading to per-process memory while Redis is down.

The cache holds only rate-limit counters (django-ratelimit per IP for login/refresh, the
throttle of the authenticated API: ``count_hit``, one round trip; the per-account login limit
is in the database) and the stamps that revoke the per-process copies of authenticated users
(``count_hits_and_get``: the throttle's hit and the stamps in that same round trip;
accounts/auth_cache.py). Losing Redis must not take the API down, must not slow it down, and must
not switch the limits off:

- while Redis errors, calls are served by a process-local memory cache shared by every thread
  of the process (Django builds a cache object per thread; the fallback and the breaker are per
  process and per Redis location), so limits hold per process (N processes allow at most N
  times the limit) until Redis is back;
- a circuit breaker: after a failure, Redis is not called at all for ``RETRY_SECONDS`` (default
  5; a cache parameter next to ``LOCATION``); then one call probes it, and a success closes the
  breaker. Without it every request would wait for the connect timeout (about 1 s).

Every fallback is logged (ERROR, at most every 10 s). The stamps have no fallback: while Redis
is down they read as unknown and authentication goes to the database on every request.
"""

import secrets
import threading

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from core.breaker import CircuitBreaker

_METHODS = ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many", "clear")
_FALLBACK_MAX_ENTRIES = 10_000


_shared: dict[tuple[str, float], tuple[CircuitBreaker, LocMemCache]] = {}
_shared_lock = threading.Lock()


def _shared_for(location: str, retry_seconds: float, timeout) -> tuple[CircuitBreaker, LocMemCache]:
    key = (location, retry_seconds)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = (
                CircuitBreaker(retry_seconds, subject="cache", fallback="served from process memory"),
                # LocMemCache keeps its data in a module-level dict by name: same name, same store.
                LocMemCache(
                    f"resilient-fallback-{location}",
                    {"TIMEOUT": timeout, "OPTIONS": {"MAX_ENTRIES": _FALLBACK_MAX_ENTRIES}},
                ),
            )
        return _shared[key]


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

    def count_hits_and_get(self, hits: list[tuple[str, int]], keys: list[str]) -> tuple[list[int], list]:
        # The throttle's hits and the auth stamps in one pipeline: one round trip per request
        # (accounts/auth_cache.py). The primary's pool, also for the reads: a replica may lag a stamp.
        pipe = self.get_client(write=True).pipeline(transaction=False)
        for key, ttl in hits:
            pipe.incr(key)
            pipe.expire(key, ttl, nx=True)
        for key in keys:
            pipe.get(key)
        out = pipe.execute()
        return out[0 : 2 * len(hits) : 2], out[2 * len(hits) :]

    def restamp(self, keys: list[str], ttl: int) -> bool:
        pipe = self.get_client(write=True).pipeline(transaction=False)
        for key in keys:
            pipe.set(key, secrets.token_hex(8), ex=ttl)
        pipe.execute()
        return True

    def stamps(self, keys: list[str], ttl: int) -> list:
        pipe = self.get_client(write=True).pipeline(transaction=False)
        for key in keys:
            pipe.set(key, secrets.token_hex(8), ex=ttl, nx=True)
        for key in keys:
            pipe.get(key)
        return pipe.execute()[len(keys) :]


class ResilientRedisCache(RedisCache):
    def __init__(self, server, params):
        # No retries inside redis-py (by default it retries with backoff, several seconds against an
        # unreachable host): the breaker below is the retry policy.
        options = {"socket_connect_timeout": 1, "socket_timeout": 1, "retry": Retry(NoBackoff(), 0)}
        params = {**params, "OPTIONS": {**options, **params.get("OPTIONS", {})}}
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        location = server if isinstance(server, str) else ",".join(server)
        self.breaker, self.fallback = _shared_for(
            location, float(params.get("RETRY_SECONDS", 5)), params.get("TIMEOUT", 300)
        )

    def count_hit(self, key: str, ttl: int) -> int:
        """Count one hit of ``key`` (a window that expires after ``ttl`` s); the new count."""
        if self.breaker.allows():
            try:
                count = self._cache.count_hit(self.make_and_validate_key(key), ttl)
            except (RedisError, OSError) as exc:
                self.breaker.failed("count_hit", exc)
            else:
                self.breaker.succeeded()
                return count
        return count_hit_portable(self.fallback, key, ttl)

    # Stamps: random values that a writer replaces to say "what you copied under the old value is
    # stale" (accounts/auth_cache.py). Random, not counters: a stamp lost with Redis's data and set
    # again never equals one a process copied earlier. While Redis is down there are no stamps
    # (None): the callers then copy nothing.

    def count_hits_and_get(self, hits: list[tuple[str, int]], keys: list[str]) -> tuple[list[int], list] | None:
        """``count_hit`` of each (key, ttl) of ``hits`` and the values of ``keys``, in one round trip;
        None while Redis is down (nothing counted: the caller counts some other way)."""
        return self._call(
            "count_hits_and_get",
            lambda: self._cache.count_hits_and_get(
                [(self.make_and_validate_key(key), ttl) for key, ttl in hits],
                [self.make_and_validate_key(key) for key in keys],
            ),
        )

    def restamp(self, keys: list[str], ttl: int) -> bool:
        """Give each of ``keys`` a new random stamp (expiring after ``ttl`` s); False if Redis is down."""
        keys = [self.make_and_validate_key(key) for key in keys]
        return bool(self._call("restamp", lambda: self._cache.restamp(keys, ttl)))

    def stamps(self, keys: list[str], ttl: int) -> list | None:
        """The stamps of ``keys``, setting a new random one where there is none; None if Redis is down."""
        keys = [self.make_and_validate_key(key) for key in keys]
        return self._call("stamps", lambda: self._cache.stamps(keys, ttl))

    def _call(self, name: str, call):
        if not self.breaker.allows():
            return None
        try:
            result = call()
        except (RedisError, OSError) as exc:
            self.breaker.failed(name, exc)
            return None
        self.breaker.succeeded()
        return result


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
        if self.breaker.allows():
            try:
                result = getattr(RedisCache, name)(self, *args, **kwargs)
            except (RedisError, OSError) as exc:
                self.breaker.failed(name, exc)
            else:
                self.breaker.succeeded()
                return result
        return getattr(self.fallback, name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in _METHODS:
    setattr(ResilientRedisCache, _name, _guarded(_name))
