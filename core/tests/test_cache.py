"""The production cache reuses its Redis clients (the pool is what holds connections)."""

import threading
import time

import pytest
from django.core.cache import caches

from core.cache import ResilientRedisCache


def test_one_client_per_pool_shared_by_calls_and_threads(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for the Redis cache")
    cache = ResilientRedisCache(settings.REDIS_URL, {"KEY_PREFIX": "test-cache-reuse"})
    first = cache._cache.get_client(write=True)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(cache._cache.get_client(write=True))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(client is first for client in seen)
    cache.set("k", 41)
    assert cache.incr("k") == 42 and cache.get("k") == 42
    cache.delete("k")


def test_the_configured_default_cache_is_the_resilient_one(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for the Redis cache")
    assert isinstance(caches["default"], ResilientRedisCache)


@pytest.mark.django_db
def test_breaker_stops_calling_a_hanging_redis_and_keeps_throttling(black_hole, settings, monkeypatch):
    """Issue 19.10: after one timed-out call the process stops calling Redis until the retry time,
    so the API keeps its normal latency, and the throttle still counts (process memory)."""
    from rest_framework.throttling import UserRateThrottle

    from core.testing import api_client, make_org, make_user

    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{black_hole.port}/0",
            "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
            "RETRY_SECONDS": 60,
        }
    }
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "8/min"})
    user = make_user(make_org("breaker"), "b@breaker.test")
    client = api_client(user)
    statuses = [client.get("/api/v1/auth/me/").status_code for _ in range(10)]
    assert statuses == [200] * 8 + [429] * 2
    assert len(black_hole.accepted) == 1  # one call met the hang; the other ~19 cache calls skipped Redis
    assert caches["default"].breaker.is_open


def test_breaker_probes_again_after_the_retry_time(settings):
    """A closed port (connection refused): the breaker opens, skips Redis, and after RETRY_SECONDS
    one call probes; a live Redis at that point closes it."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for the Redis cache")
    params = {"RETRY_SECONDS": 0.2, "KEY_PREFIX": f"{settings.TEST_REDIS_PREFIX}:breaker"}
    dead = ResilientRedisCache("redis://127.0.0.1:1/0", params)
    assert dead.add("n", 1, 60) is True and dead.incr("n") == 2  # served from process memory
    assert dead.breaker.is_open
    # Another cache object on the same location (another thread's) shares the breaker and the memory.
    twin = ResilientRedisCache("redis://127.0.0.1:1/0", params)
    assert twin.breaker is dead.breaker and twin.incr("n") == 3

    live = ResilientRedisCache(settings.REDIS_URL, params)
    live.breaker.failed("test", ConnectionError("simulated earlier outage"))
    assert live.breaker.is_open and live.get("k") is None
    time.sleep(0.3)
    live.set("k", 1)  # the probe reaches Redis and closes the breaker
    assert not live.breaker.is_open and live.get("k") == 1
    live.delete("k")
