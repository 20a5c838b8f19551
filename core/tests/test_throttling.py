"""The API throttle: a fixed-window counter per user, one Redis round trip per request (issue 14)."""

import pytest
from redis.connection import Connection
from rest_framework.throttling import UserRateThrottle

from core.cache import ResilientRedisCache
from core.testing import api_client, error_code, make_user
from core.throttling import WindowUserRateThrottle

ME = "/api/v1/auth/me/"


@pytest.fixture
def redis_cache(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for the Redis cache")
    cache = ResilientRedisCache(settings.REDIS_URL, {"KEY_PREFIX": "test-throttle"})
    cache.delete("hits")
    yield cache
    cache.delete("hits")


def test_count_hit_is_one_round_trip_and_keeps_the_first_expiry(redis_cache, monkeypatch):
    sends = []
    original = Connection.send_packed_command
    monkeypatch.setattr(
        Connection, "send_packed_command", lambda self, *a, **kw: sends.append(1) or original(self, *a, **kw)
    )
    assert redis_cache.count_hit("hits", 60) == 1
    assert len(sends) == 1
    assert [redis_cache.count_hit("hits", 5) for _ in range(2)] == [2, 3]
    client = redis_cache._cache.get_client(write=True)
    ttl = client.ttl(redis_cache.make_and_validate_key("hits"))
    assert 5 < ttl <= 60  # EXPIRE NX: later hits do not push the window's end


@pytest.mark.django_db
def test_limit_per_user_per_window_with_retry_after_to_the_window_end(requester, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min"})
    window_start = 60 * 16_666_667.0  # a minute boundary
    monkeypatch.setattr(WindowUserRateThrottle, "timer", lambda self: window_start + 45)
    client = api_client(requester)
    assert [client.get(ME).status_code for _ in range(2)] == [200, 200]
    refused = client.get(ME)
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert refused["Retry-After"] == "16"  # the 15 s left of the window, rounded up by the error handler
    other = make_user(requester.organization, "other@acme-test.test")
    assert api_client(other).get(ME).status_code == 200
    # the next window starts afresh
    monkeypatch.setattr(WindowUserRateThrottle, "timer", lambda self: window_start + 61)
    assert client.get(ME).status_code == 200
