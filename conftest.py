import shutil
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection

from core.testing import api_client, make_org, make_user

# The slowest tests (fuzzing, the browser, real servers and workers) run first: pytest-xdist hands
# tests out round-robin in collection order, so they spread over the workers instead of ending the
# run on one worker while the others idle.
SLOW_FIRST = ("fuzz", "browser", "integration")


def pytest_collection_modifyitems(items):
    def rank(item):
        return next((i for i, name in enumerate(SLOW_FIRST) if item.get_closest_marker(name)), len(SLOW_FIRST))

    items.sort(key=rank)


def _redis():
    """A client of the session's own Redis (tests may point settings.REDIS_URL elsewhere for a while)."""
    import redis

    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(django_settings.REDIS_URL)
    return _redis_client


_redis_client = None


def delete_test_keys() -> None:
    """Delete this session's Redis keys, never others': they all start with TEST_REDIS_PREFIX
    (config/settings_test.py), and the database may be shared with other sessions or `make serve`."""
    if not django_settings.REDIS_URL:
        cache.clear()  # process memory: ours alone
        return
    client = _redis()
    keys = list(client.scan_iter(match=f"{django_settings.TEST_REDIS_PREFIX}:*", count=1000))
    if keys:
        client.unlink(*keys)


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters live in the cache; no test may inherit another's.
    delete_test_keys()
    yield
    delete_test_keys()


@pytest.fixture(scope="session", autouse=True)
def _no_redis_keys_left():
    yield
    delete_test_keys()  # also what servers and workers wrote after the last test


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller (or the only process): after every worker
        from core.tests.servers import template_directory

        shutil.rmtree(template_directory(), ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and before it drops the test database: end the sessions other than ours
    still open on it (a thread's connection that nobody closed, a server that outlived its test),
    which would otherwise make the DROP fail and leave the database behind."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _close_event_breakers():
    # A test that makes Redis fail opens the after-commit breakers of this process: the next
    # test must not find its pushes skipped.
    yield
    from core import events

    events.layer_breaker.succeeded()
    events.broker_breaker.succeeded()


@pytest.fixture
def black_hole():
    """A TCP port that accepts and never answers (core/tests/servers.py ``BlackHole``)."""
    from core.tests.servers import BlackHole

    hole = BlackHole()
    yield hole
    hole.close()


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
            "CONFIG": {
                "hosts": [settings.REDIS_URL],
                "prefix": f"{settings.TEST_REDIS_PREFIX}:layer-{uuid.uuid4().hex[:8]}",
            },
        }
    }
    return settings.CHANNEL_LAYERS
