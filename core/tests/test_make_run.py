"""``make run`` (scripts/run.py): one line per set-up step, the database created if missing, background jobs on."""

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from core.tests.servers import ROOT, RedisProcess, embedded_env, free_port, redis_server_binary, wait_http


def _start(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # honcho's children go with it
    )


def _lines_until(proc: subprocess.Popen, last: str, timeout: float = 120) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"run.py ended early: {''.join(lines)}"
        lines.append(line.rstrip("\n"))
        if last in line:
            return lines
    raise AssertionError(f"no {last!r} in {lines}")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.integration
def test_run_on_sqlite_prints_its_steps_and_keeps_the_embedded_scheduler(tmp_path):
    port = free_port()
    env = embedded_env(tmp_path, PORT=port, RUN_DOTENV=tmp_path / ".env")
    env.pop("DEBUG")  # comes from the .env it writes
    proc = _start(env)
    try:
        steps = [line for line in _lines_until(proc, "==> serving") if line.startswith("==> ")]
        assert steps == [
            "==> wrote .env: DEBUG=true, new SECRET_KEY (development only, not committed)",
            f"==> database: SQLite {tmp_path / 'db.sqlite3'}",
            "==> applying migrations",
            "==> seeding the demo organizations (seed_demo)",
            "==> collecting static files",
            "==> background jobs: the embedded scheduler in the web process (no broker; SLA scan, e-mail sweep)",
            f"==> serving API, admin, docs and WebSocket on http://127.0.0.1:{port} "
            "(login: alice@acme.example / Demo-Pass-2026)",
        ]
        assert "embedded scheduler started" in _lines_until(proc, "embedded scheduler started")[-1]
    finally:
        _stop(proc)


@pytest.mark.integration
def test_run_with_database_and_redis_urls_creates_the_database_and_runs_a_worker_and_beat(tmp_path):
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    if not redis_server_binary():
        pytest.skip("needs the redis-server binary: the worker and beat get a Redis of their own")
    name = f"run_{uuid.uuid4().hex[:10]}"
    host, user = db["HOST"] or "127.0.0.1", db["USER"] or "postgres"
    port = free_port()
    # A private Redis: production settings put the broker's keys in the database unprefixed, where a
    # worker would take tasks of anything else sharing it (another test worker, `make serve`).
    redis = RedisProcess().start()
    env = embedded_env(
        tmp_path,
        PORT=port,
        RUN_DOTENV=tmp_path / ".env",
        DATABASE_URL=f"postgres://{user}@{host}:{db['PORT'] or 5432}/{name}",
        REDIS_URL=redis.url,
        CELERY_CONCURRENCY=1,
    )
    proc = _start(env)
    try:
        lines = _lines_until(proc, "==> serving")
        assert f"==> created the database {name}" in lines
        assert f"==> background jobs: a Celery worker and beat on {redis.url} (honcho)" in lines
        assert any("beat: Starting" in line for line in _lines_until(proc, "beat: Starting"))
        assert any("ready." in line for line in _lines_until(proc, "ready."))  # the worker
        wait_http(f"http://127.0.0.1:{port}/health/ready/")
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready/").json()["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        _stop(proc)
        redis.stop()
        with psycopg.connect(host=host, user=user, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
