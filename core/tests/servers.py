"""Start real server processes (daphne) and Redis for integration tests; stopped by the caller."""

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUNICORN_ARGV = [str(BIN / "gunicorn"), "config.wsgi:application", "-c", "config/gunicorn.conf.py"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_database_url() -> str:
    """The database this test session runs on (``test_<name>``), for subprocesses to share."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def server_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=shared_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.REDIS_URL,
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_http(url: str, timeout: float = 120, proc: subprocess.Popen | None = None) -> None:
    # Generous: a server starting on a loaded 2-core machine (parallel workers) can take a minute.
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout}s")
        time.sleep(0.2)


def daphne_argv(port: int) -> list[str]:
    return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]


def start_server(argv: list[str], env: dict) -> subprocess.Popen:
    """A server process run from the repository; its stderr is kept for ``wait_http``'s error."""
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(*procs: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM to all, then SIGKILL to any still running ``timeout`` seconds later."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def gunicorn_server(metrics_dir: Path, **env):
    """gunicorn as the Procfile runs it (config/gunicorn.conf.py) on a free port, its workers'
    metrics in ``metrics_dir`` (open, no token); yields its base URL, stops it on the way out."""
    port = free_port()
    web = start_server(
        GUNICORN_ARGV,
        server_env(WEB_BIND=f"127.0.0.1:{port}", PROMETHEUS_MULTIPROC_DIR=metrics_dir, METRICS_TOKEN="", **env),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/live/", proc=web)
        yield base
    finally:
        stop(web, timeout=20)


def metric_writers(metrics_dir: Path) -> set[str]:
    """The processes (pids) that wrote counters into a multiprocess metrics directory."""
    return {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}


def celery_worker(tmp_path: Path, *, pool: tuple[str, ...] = ("-P", "solo"), **env) -> subprocess.Popen:
    """A Celery worker on the test session's broker and database (``notifications.tests.worker_settings``:
    e-mails written as files in ``tmp_path``); its log, stdout and stderr together, is ``proc.stdout``."""
    return subprocess.Popen(
        [str(BIN / "celery"), "-A", "config", "worker", *pool, "--loglevel=INFO", "--without-heartbeat",
         "--without-mingle", "--without-gossip"],
        cwd=ROOT,
        env=server_env(DJANGO_SETTINGS_MODULE="notifications.tests.worker_settings", TEST_EMAIL_FILE_PATH=tmp_path,
                       **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


@contextlib.contextmanager
def daphne_servers(count: int, **env):
    """``count`` daphne processes on free ports with the same environment; yields their base URLs."""
    procs, bases = [], []
    try:
        for _ in range(count):
            port = free_port()
            procs.append(start_server(daphne_argv(port), server_env(**env)))
            bases.append(f"http://127.0.0.1:{port}")
        for proc, base in zip(procs, bases, strict=True):
            wait_http(f"{base}/health/live/", proc=proc)
        yield bases
    finally:
        stop(*procs)


@contextlib.contextmanager
def production_servers(*, web: int = 1, ws: int = 1, **env):
    """The production processes of the Procfile on free ports: ``web`` gunicorn and ``ws`` uvicorn servers.

    Yields ``{"web": [base URLs], "ws": [base URLs]}``.
    """
    procs, bases = [], {"web": [], "ws": []}
    try:
        for kind, count in (("web", web), ("ws", ws)):
            for _ in range(count):
                port = free_port()
                if kind == "web":
                    argv = GUNICORN_ARGV
                    extra = {"WEB_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": 2, "WEB_THREADS": 2}
                else:
                    argv = [str(BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1", "--port",
                            str(port), "--ws", "websockets", "--no-access-log"]  # fmt: skip
                    extra = {}
                procs.append(start_server(argv, server_env(**extra, **env)))
                bases[kind].append(f"http://127.0.0.1:{port}")
        for proc, base in zip(procs, bases["web"] + bases["ws"], strict=True):
            wait_http(f"{base}/health/live/", proc=proc)
        yield bases
    finally:
        stop(*procs, timeout=20)


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class RedisProcess:
    """A private redis-server on a free port (never the shared one), started and stopped at will."""

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisProcess":
        binary = redis_server_binary()
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def embedded_env(tmp_path: Path, **extra) -> dict:
    """The environment of ``make run``'s embedded default (SQLite in ``tmp_path``, no Redis, no broker)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY"} and not k.startswith("PYTEST")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def template_directory() -> Path:
    """Databases made once per test session and copied by its tests (all xdist workers share it;
    conftest.py removes it when the session ends)."""
    return Path(tempfile.gettempdir()) / f"workflow-templates-{os.environ['TEST_REDIS_SESSION']}"


def embedded_database(tmp_path: Path, *, seeded: bool = True, **extra) -> dict:
    """``embedded_env`` with its SQLite database in ``tmp_path`` migrated (and seeded with ``seed_demo``).

    The file is a copy of one made once per test session: migrating and seeding take seconds each,
    and test_make_run checks them from scratch, as ``make run`` does them.
    """
    directory = template_directory() / ("seeded" if seeded else "migrated")
    directory.mkdir(parents=True, exist_ok=True)
    template = directory / "db.sqlite3"
    with open(directory / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker makes it, the others wait for it
        if not template.exists():
            building = embedded_env(directory, DATABASE_URL=f"sqlite:///{directory / 'building.sqlite3'}")
            manage(building, "migrate", "--noinput", "-v0")
            if seeded:
                manage(building, "seed_demo")
            (directory / "building.sqlite3").rename(template)
    shutil.copyfile(template, tmp_path / "db.sqlite3")
    return embedded_env(tmp_path, **extra)


def manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@contextlib.contextmanager
def embedded_server(tmp_path: Path, **extra):
    """A migrated, seeded SQLite database in ``tmp_path`` (``embedded_database``) served by daphne, as ``make run``.

    Yields ``(base_url, env)``; ``env`` runs ``manage.py`` commands against the same database.
    """
    env = embedded_database(tmp_path, **extra)
    port = free_port()
    proc = start_server(daphne_argv(port), env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/live/", proc=proc)
        yield base, env
    finally:
        stop(proc)


def login(base: str, email: str, password: str = "Demo-Pass-2026") -> dict:
    """Authorization headers for a demo user of a running server."""
    response = httpx.post(f"{base}/api/v1/auth/login/", json={"email": email, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access']}"}


def approve_over_http(base: str, task, token: str) -> httpx.Response:
    """Approve ``task`` through a running server's API as the holder of the access ``token``."""
    return httpx.post(
        f"{base}/api/v1/tasks/{task.pk}/approve/",
        json={"comment": "ok"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


class BlackHole:
    """A TCP port that accepts connections and never answers: Redis hanging (a lost host, a full
    network queue), where every call waits for the socket timeout. Counts the connections."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()
