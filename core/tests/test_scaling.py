"""Beyond one machine (docs/scaling.md): the container topology, and processes that share only PostgreSQL and Redis."""

import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from websockets.sync.client import connect

from approvals.models import ApprovalTask
from core.testing import api_client
from core.tests.servers import ROOT, approve_over_http, production_servers
from notifications.tests.conftest import access_token
from requests.tests.factories import make_flow, user_step


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_describes_the_production_topology():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "ws", "worker", "beat", "postgres", "redis", "proxy", "migrate"} <= set(services)
    assert services["beat"]["deploy"]["replicas"] == 1
    for scalable in ("web", "ws", "worker"):
        assert "ports" not in services[scalable], f"{scalable} publishes a host port: it could not scale"
        assert "container_name" not in services[scalable]
    assert "gunicorn" in services["web"]["command"] and "uvicorn" in services["ws"]["command"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    proxy = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "location /ws/" in proxy and "http://ws:8001" in proxy and "http://web:8000" in proxy
    assert "Upgrade $http_upgrade" in proxy


def test_compose_config_is_valid(tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip("needs the Docker Compose client (docker compose or docker-compose) to validate compose.yaml")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "SECRET_KEY": "k" * 50, "HOME": str(tmp_path)}
    out = subprocess.run(
        [*command, "-f", str(ROOT / "compose.yaml"), "config"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert resolved["services"]["web"]["environment"]["SECRET_KEY"] == "k" * 50
    missing = subprocess.run(
        [*command, "-f", str(ROOT / "compose.yaml"), "config"], capture_output=True, text=True, timeout=60,
        env={**env, "SECRET_KEY": ""},
    )  # fmt: skip
    assert missing.returncode != 0 and "SECRET_KEY" in missing.stderr


def test_dockerfile_builds_one_image_for_every_process():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile and "collectstatic" in dockerfile
    assert "USER app" in dockerfile  # never root at runtime
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_notification_made_on_a_web_process_reaches_sockets_on_two_other_ws_processes(org):
    """gunicorn (web) and two uvicorn (ws) processes share only PostgreSQL and Redis, as on separate machines."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for the channel layer between processes")
    from core.testing import make_user

    alice = make_user(org, "alice-scale@acme-test.test", roles=["requester"])
    bob = make_user(org, "bob-scale@acme-test.test", roles=["requester"])
    version = make_flow(org, [user_step(1, "Approve", bob)])
    created = api_client(alice).post(
        "/api/v1/requests/",
        {
            "workflow": version.definition.key,
            "title": "Monitors",
            "data": {"amount": 300, "vendor": "V"},
            "submit": True,
        },
    )
    assert created.status_code == 201, created.json()
    task = ApprovalTask.objects.get(request_id=created.json()["id"])

    with production_servers(web=1, ws=2) as servers:
        (web,), ws_bases = servers["web"], servers["ws"]
        with contextlib.ExitStack() as stack:
            sockets = [
                stack.enter_context(
                    connect(
                        f"{base.replace('http://', 'ws://')}/ws/notifications/?token={access_token(alice)}", origin=base
                    )
                )
                for base in ws_bases
            ]
            for ws in sockets:
                assert json.loads(ws.recv(timeout=10))["type"] == "unread_count"
            started = time.monotonic()
            approved = approve_over_http(web, task, access_token(bob))
            assert approved.status_code == 200, approved.text
            for ws in sockets:
                while (message := json.loads(ws.recv(timeout=10)))["type"] != "notification":
                    pass
                assert message["notification"]["kind"] == "request_approved"
                assert message["notification"]["request"] == created.json()["id"]
            latency = time.monotonic() - started
    print(f"approve on gunicorn -> pushed by both uvicorn processes: {latency * 1000:.0f} ms")


def test_scaling_doc_names_every_process():
    text = (Path(ROOT) / "docs" / "scaling.md").read_text()
    for name in ("web", "ws", "worker", "beat", "DATABASE_REPLICA_URL", "docker compose"):
        assert name in text
