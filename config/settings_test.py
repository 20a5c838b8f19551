"""Test settings: the real settings on PostgreSQL and Redis, with test-only speed-ups.

Every value here can be overridden from the environment (each helper/CI job may
point at its own database, e.g. ``DATABASE_URL=postgres://postgres@127.0.0.1/wf_ci``).
"""

import os
import uuid

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/workflow")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-7f3c9a1e5b2d8f4a6c0e9b7d3f1a5c8e2b4d6f")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("DEBUG", "false")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# No padding of the password reset answer; the enumeration-timing test sets it (accounts/tests).
PASSWORD_RESET_MIN_MS = 0
# Unit tests run Celery tasks inline; integration tests start a real worker and turn this off.
CELERY_TASK_ALWAYS_EAGER = True
MEDIA_ROOT = os.environ.get("MEDIA_ROOT", str(BASE_DIR / "test-artifacts" / "media"))  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# The audit table refuses TRUNCATE (auditlogs migration 0002) unless the session allows it;
# transactional tests empty the database with TRUNCATE between tests, so test sessions do.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    _options = DATABASES["default"].setdefault("OPTIONS", {})  # noqa: F405
    _options["options"] = (_options.get("options", "") + " -c auditlogs.allow_truncate=on").strip()

# Redis isolation: every key a test session writes (cache, channel layer, Celery broker) starts with
# TEST_REDIS_PREFIX, one per pytest-xdist worker and per session, so that parallel workers and
# sessions sharing a Redis database never see each other's keys, and cleaning up deletes only
# our own keys (conftest.py) instead of flushing a database that others may use. Exported, so the
# servers and Celery workers a test starts (which inherit the environment) use the same keys.
_session = os.environ.setdefault("TEST_REDIS_SESSION", uuid.uuid4().hex[:8])
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker or "TEST_REDIS_PREFIX" not in os.environ:
    os.environ["TEST_REDIS_PREFIX"] = f"test-{_session}-{_worker or 'main'}"
TEST_REDIS_PREFIX = os.environ["TEST_REDIS_PREFIX"]
if REDIS_URL:  # noqa: F405
    CACHES["default"]["KEY_PREFIX"] = TEST_REDIS_PREFIX  # noqa: F405
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"{TEST_REDIS_PREFIX}:asgi"  # noqa: F405
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "global_keyprefix": f"{TEST_REDIS_PREFIX}:",
    }
