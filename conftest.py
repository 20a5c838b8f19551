import uuid

import pytest
from django.core.cache import cache

from core.testing import api_client, make_org, make_user


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters live in the cache; no test may inherit another's.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def org(db):
    return make_org("acme-test", name="Acme Test")


@pytest.fixture
def other_org(db):
    return make_org("other-test", name="Other Test")


@pytest.fixture
def admin_user(org):
    return make_user(org, "admin@acme-test.test", roles=["org_admin"], is_staff=True)


@pytest.fixture
def requester(org):
    return make_user(org, "req@acme-test.test", roles=["requester"])


@pytest.fixture
def other_admin(other_org):
    return make_user(other_org, "admin@other-test.test", roles=["org_admin"], is_staff=True)


@pytest.fixture
def client_for():
    return api_client


@pytest.fixture
def redis_layer(settings):
    """The production channel layer on REDIS_URL's database, with a prefix of its own per test."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for the channels-redis layer")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layer.BlockingPoolRedisChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
        }
    }
    return settings.CHANNEL_LAYERS
