"""The processes a benchmark runs against: web (REST), ws (WebSocket), a Celery worker.

Each one is started in its own session (so the whole tree can be killed), from the repo root,
with the benchmark environment; ``Topology`` is a context manager that starts them, waits for
``/health/ready/`` and stops everything on the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
WEB_PORT = int(os.environ.get("BENCH_WEB_PORT", "8100"))
WS_PORT = int(os.environ.get("BENCH_WS_PORT", "8101"))

# The REST servers compared (docs/benchmarks.md "Serving"): argv and extra environment.
# WebSockets always stay on ASGI. Worker counts suit a 2-core box where PostgreSQL, Redis,
# the Celery worker and the load generator share the cores.
WEB_SERVERS: dict[str, tuple[list[str], dict[str, str]]] = {
    "gunicorn-sync": (
        ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py"],
        {"WEB_CONCURRENCY": "4", "WEB_WORKER_CLASS": "sync", "WEB_THREADS": "1"},
    ),
    "gunicorn-sync-no-reuse": (
        ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py"],
        {"WEB_CONCURRENCY": "4", "WEB_WORKER_CLASS": "sync", "WEB_THREADS": "1", "CONN_MAX_AGE": "0"},
    ),
    # config/gunicorn.conf.py's defaults: what the Procfile runs.
    "gunicorn-gthread": (["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py"], {}),
    "uvicorn": (["gunicorn", "config.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "-w", "2"], {}),
    "uvicorn-pool": (
        ["gunicorn", "config.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "-w", "2"],
        {"DATABASE_POOL": "true"},
    ),
    "daphne": (["daphne", "config.asgi:application"], {}),
}
WS_SERVER = ["uvicorn", "config.asgi:application", "--no-access-log", "--ws", "websockets"]


def bench_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Production settings (DEBUG off) on local services, with nothing that would measure something else."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DEBUG="false",
        SECRET_KEY="bench-only-secret-key-not-for-production-0123456789abcdefghijklmnop",
        ALLOWED_HOSTS=f"{HOST},localhost",
        SECURE_SSL_REDIRECT="false",  # no TLS terminator in front of the bench
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        API_THROTTLE_RATE="1000000/min",  # the per-user throttle would measure itself
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _bind_args(server: list[str], port: int) -> list[str]:
    if server[0] == "gunicorn":
        return ["-b", f"{HOST}:{port}", "--access-logfile", "/dev/null", "--graceful-timeout", "5"]
    if server[0] == "daphne":
        return ["-b", HOST, "-p", str(port), "--access-log", "/dev/null"]
    return ["--host", HOST, "--port", str(port)]


class Topology:
    def __init__(self, *, web: str, env: dict[str, str], log_dir: Path, with_ws: bool = True, with_worker: bool = True):
        self.web, self.env, self.log_dir = web, env, log_dir
        self.with_ws, self.with_worker = with_ws, with_worker
        self.procs: dict[str, subprocess.Popen] = {}
        self.web_url = f"http://{HOST}:{WEB_PORT}"
        self.ws_url = f"ws://{HOST}:{WS_PORT}"

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        argv = [str(BIN / argv[0]), *argv[1:]]
        self.procs[name] = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __enter__(self) -> Topology:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        server, extra = WEB_SERVERS[self.web]
        # the production settings plus the bench-only ceiling route (bench/ceiling_urls.py)
        ceiling = {"DJANGO_SETTINGS_MODULE": "ceiling_settings", "PYTHONPATH": str(ROOT / "bench")}
        self._start("web", [*server, *_bind_args(server, WEB_PORT)], {**ceiling, **extra})
        if self.with_ws:
            self._start("ws", [*WS_SERVER, *_bind_args(WS_SERVER, WS_PORT)])
        if self.with_worker:
            self._start(
                "worker", ["celery", "-A", "config", "worker", "-c", "1", "-l", "WARNING", "--without-heartbeat"]
            )
        try:
            self._wait_ready(self.web_url)
            if self.with_ws:
                self._wait_ready(f"http://{HOST}:{WS_PORT}")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, base: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}")
            try:
                if httpx.get(f"{base}/health/ready/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{base} not ready after {timeout}s")

    def sessions(self) -> dict[str, int]:
        """name -> session id of each process tree (each started in a session of its own)."""
        return {name: proc.pid for name, proc in self.procs.items()}

    def rss_mb(self, name: str = "web") -> float:
        """Resident memory of a process and all its children (gunicorn master + workers)."""
        proc = self.procs[name]
        out = subprocess.run(["ps", "-o", "rss=", "-s", str(proc.pid)], capture_output=True, text=True).stdout
        return round(sum(int(x) for x in out.split()) / 1024, 1)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __exit__(self, *exc) -> None:
        self.stop()
