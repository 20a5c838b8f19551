import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.testing import make_user
from webhooks import services


class Receiver:
    """A real HTTP server on loopback: records every request and answers from a script (default 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, str, dict]] = []  # (status, body, headers) per request, then 200
        self.delay = 0.0
        self.delays: list[float] = []  # per request, before ``delay``
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                receiver.requests.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "path": self.path}
                )
                receiver.arrived.set()
                pause = receiver.delays.pop(0) if receiver.delays else receiver.delay
                if pause:
                    time.sleep(pause)
                status, text, extra = receiver.script.pop(0) if receiver.script else (200, "ok", {})
                payload = text.encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (timeout test)
                    self.wfile.write(payload)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.1"]
    settings.WEBHOOK_REQUIRE_HTTPS = False
    settings.WEBHOOK_TIMEOUT_SECONDS = 2


@pytest.fixture
def hook_admin(org):
    return make_user(org, "hooks@acme-test.test", roles=["org_admin"], is_staff=True)


@pytest.fixture
def endpoint_for(hook_admin, org):
    def make(url, events=("*",), organization=None):
        return services.endpoint_create(
            actor=hook_admin, organization=organization or org, url=url, events=list(events)
        )

    return make
