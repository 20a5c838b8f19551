"""The embedded default boots with nothing but Python: SQLite, in-memory layers, inline jobs.

Runs the real entry points in a subprocess (migrate, seed_demo, daphne) and logs in over HTTP.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_embedded_default_serves_login_docs_and_admin(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    python = sys.executable
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        result = subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(python).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/live/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        login = httpx.post(
            f"{base}/api/v1/auth/login/", json={"email": "alice@acme.example", "password": "Demo-Pass-2026"}
        )
        assert login.status_code == 200, login.text
        access = login.json()["access"]
        me = httpx.get(f"{base}/api/v1/auth/me/", headers={"Authorization": f"Bearer {access}"})
        assert me.json()["email"] == "alice@acme.example"
        assert httpx.get(f"{base}/api/docs/").status_code == 200
        assert httpx.get(f"{base}/api/schema/").status_code == 200
        assert httpx.get(f"{base}/admin/login/").status_code == 200
        assert httpx.get(f"{base}/health/ready/").json()["checks"] == {"database": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=10)
