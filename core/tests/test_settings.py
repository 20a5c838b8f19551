"""Production safety: the process refuses to start on an unsafe configuration."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    result = _boot(DEBUG="false", ALLOWED_HOSTS="example.com", SECRET_KEY="")  # empty = unset, and no .env key
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


def _on_the_test_database(code: str, why: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new process with production settings (DEBUG on) on this test's PostgreSQL
    database; ``env``'s None values are removed from the environment. Skips without PostgreSQL."""
    from django.db import connection

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        import pytest

        pytest.skip(f"needs PostgreSQL (DATABASE_URL): {why}")
    url = url.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]  # the test database
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "DATABASE_URL": url}
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True)


def test_database_pool_serves_queries_from_psycopgs_pool(db):
    """``DATABASE_POOL=true`` (for ASGI servers): connections come from psycopg's pool."""
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "assert connection.settings_dict['CONN_MAX_AGE'] == 0\n"
        "with connection.cursor() as c: c.execute('SELECT 1'); assert c.fetchone() == (1,)\n"
        "print(type(connection.pool).__name__, connection.pool.max_size)\n"
    )
    result = _on_the_test_database(code, "psycopg's pool", DATABASE_POOL="true", DATABASE_POOL_MAX="7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ConnectionPool", "7"]


def _unsafe_env(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", *_LEAKY}}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false", ALLOWED_HOSTS="example.com", **env)
    return clean


def test_unsafe_production_config_refuses_with_one_line_and_no_traceback():
    env = _unsafe_env(SECRET_KEY="short")
    for argv in (["manage.py", "check"], ["-c", "import config.asgi"], ["-c", "import config.wsgi"]):
        result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 1, argv
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("Refusing to start: SECRET_KEY is unsafe: with DEBUG off set SECRET_KEY")


@pytest.mark.integration
def test_make_runs_dotenv_lets_every_manage_py_command_start(tmp_path):
    """``scripts/dev_dotenv.py`` (run by ``make run``) writes DEBUG=true and a fresh key, once."""
    dotenv = tmp_path / ".env"
    first = subprocess.run(
        [sys.executable, "scripts/dev_dotenv.py", str(dotenv)], cwd=ROOT, capture_output=True, text=True
    )
    assert first.stdout.startswith("==> wrote .env: DEBUG=true")
    written = dotenv.read_text()
    values = dict(line.split("=", 1) for line in written.splitlines() if line and not line.startswith("#"))
    assert values["DEBUG"] == "true" and len(values["SECRET_KEY"]) >= 80
    assert dotenv.stat().st_mode & 0o077 == 0  # the key is readable by its owner only
    again = subprocess.run(
        [sys.executable, "scripts/dev_dotenv.py", str(dotenv)], cwd=ROOT, capture_output=True, text=True
    )
    assert again.stdout.startswith("==> using the existing .env") and dotenv.read_text() == written

    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(values, DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for command in (["migrate", "-v0"], ["sla_scan", "--dry-run"], ["audit_verify"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, (command, result.stderr)


def test_the_dotenv_is_never_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0


def test_production_processes_refuse_an_unsafe_config_with_one_line():
    """gunicorn stops (no endless worker restarts) and Celery exits, each with the one-line reason."""
    from core.tests.servers import BIN, free_port

    env = _unsafe_env(SECRET_KEY="short")
    web = subprocess.run(
        [str(BIN / "gunicorn"), "config.wsgi:application", "-b", f"127.0.0.1:{free_port()}", "-w", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert web.returncode == 3 and "Reason: Worker failed to boot." in web.stderr
    worker = subprocess.run(
        [str(BIN / "celery"), "-A", "config", "worker"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert worker.returncode == 1
    for result in (web, worker):
        assert "Traceback" not in result.stderr
        refusals = [line for line in result.stderr.splitlines() if line.startswith("Refusing to start: ")]
        assert len(refusals) == 1 and "SECRET_KEY is unsafe" in refusals[0]


def test_hot_statements_are_prepared_by_default_on_postgresql(db):
    """``DATABASE_SERVER_SIDE_BINDING`` and ``DATABASE_PREPARED_STATEMENTS`` (default on): a
    statement sent repeatedly on a connection is prepared (not parsed and planned again);
    ``false`` turns it off, for a pooler that cannot keep prepared statements."""
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "from accounts.models import User\n"
        "for _ in range(6): list(User.objects.filter(email='nobody@example.test'))\n"
        "with connection.cursor() as c:\n"
        "    c.execute(\"SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%accounts_user%%'\")\n"
        "    print(c.fetchone()[0])\n"
    )
    why = "prepared statements are PostgreSQL's"
    prepared = _on_the_test_database(code, why, DATABASE_SERVER_SIDE_BINDING=None, DATABASE_PREPARED_STATEMENTS=None)
    assert prepared.returncode == 0, prepared.stderr
    assert int(prepared.stdout.split()[-1]) >= 1
    plain = _on_the_test_database(code, why, DATABASE_PREPARED_STATEMENTS="false")
    assert plain.returncode == 0, plain.stderr
    assert int(plain.stdout.split()[-1]) == 0
