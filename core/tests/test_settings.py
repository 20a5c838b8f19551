"""Production safety: the process refuses to start on an unsafe configuration."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Variables a test process may carry that production must not (check --deploy flags them).
_LEAKY = {"DJANGO_ALLOW_ASYNC_UNSAFE"}
SAFE_KEY = "k" * 20 + "-production-grade-secret-9f8e7d6c5b4a3210"


def _boot(**env) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", *_LEAKY}
    }
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_refuses_default_secret_key_when_debug_off():
    result = _boot(DEBUG="false", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is unsafe" in result.stderr


def test_refuses_short_secret_key():
    result = _boot(DEBUG="false", ALLOWED_HOSTS="example.com", SECRET_KEY="short")
    assert result.returncode != 0 and "SECRET_KEY is unsafe" in result.stderr


def test_refuses_empty_allowed_hosts():
    result = _boot(DEBUG="false", SECRET_KEY=SAFE_KEY)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is empty" in result.stderr


def test_starts_with_safe_production_settings():
    result = _boot(DEBUG="false", SECRET_KEY=SAFE_KEY, ALLOWED_HOSTS="example.com")
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_under_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", *_LEAKY}}
    env.update(
        DEBUG="false",
        SECRET_KEY=SAFE_KEY,
        ALLOWED_HOSTS="example.com",
        DJANGO_SETTINGS_MODULE="config.settings",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_database_pool_serves_queries_from_psycopgs_pool(db):
    """``DATABASE_POOL=true`` (for ASGI servers): connections come from psycopg's pool."""
    from django.db import connection

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        import pytest

        pytest.skip("needs PostgreSQL (DATABASE_URL) for psycopg's pool")
    url = url.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]  # the test database
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "assert connection.settings_dict['CONN_MAX_AGE'] == 0\n"
        "with connection.cursor() as c: c.execute('SELECT 1'); assert c.fetchone() == (1,)\n"
        "print(type(connection.pool).__name__, connection.pool.max_size)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "DATABASE_URL": url}
    env.update(DATABASE_POOL="true", DATABASE_POOL_MAX="7")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ConnectionPool", "7"]
