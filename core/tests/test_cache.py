"""The production cache reuses its Redis clients (the pool is what holds connections)."""

import threading

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
