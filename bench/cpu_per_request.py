"""CPU per request of ``GET auth/me`` and of the ceiling, in-process (``time.process_time``).

    BENCH_DATABASE=workflow_cpu BENCH_REDIS_URL=redis://127.0.0.1:6379/15 \\
        .venv/bin/python bench/cpu_per_request.py [N] [REPEATS]

Production settings as the bench servers have them (DEBUG off, Redis), through Django's test
client: the whole middleware and DRF path, without a server or a network. The database must be
migrated (``manage.py migrate``); the script adds an organization and a user of its own. It
alternates ``auth/me`` with the copy of the authenticated user off (``AUTH_USER_CACHE_SECONDS``
0: the user query every request, as before the copy existed) and on, and the bare ``JsonResponse``
ceiling, REPEATS times N requests each, and prints the median CPU per request of each with its
queries per request. CPU time, not wall time: the other processes of a shared machine change it
much less (docs/benchmarks.md).
"""

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run
from topology import bench_env

os.environ.update(bench_env(run.DATABASE_URL, run.REDIS_URL))
sys.path.insert(0, str(run.ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ceiling_settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from core.testing import make_org, make_user  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    org = make_org(f"cpu-{uuid.uuid4().hex[:8]}")
    user = make_user(org, roles=["requester", "approver"])
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}", "HTTP_HOST": "127.0.0.1"}
    default = settings.AUTH_USER_CACHE_SECONDS
    cases = {
        "ceiling": (0, "/bench/ceiling/", {"HTTP_HOST": "127.0.0.1"}),
        "auth/me, copy off": (0, "/api/v1/auth/me/", auth),
        "auth/me, copy on": (default, "/api/v1/auth/me/", auth),
    }
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    queries: dict[str, float] = {}
    for _ in range(50):  # imports, compiled statements, connections
        client.get("/api/v1/auth/me/", **auth)
    for _ in range(repeats):
        for name, (seconds, path, headers) in cases.items():
            settings.AUTH_USER_CACHE_SECONDS = seconds
            started = time.process_time()
            for _ in range(n):
                response = client.get(path, **headers)
            cpu[name].append((time.process_time() - started) / n)
            assert response.status_code == 200, response.content
            with CaptureQueriesContext(connection) as captured:  # apart: capturing costs CPU too
                for _ in range(10):
                    client.get(path, **headers)
            queries[name] = len(captured) / 10
    print(f"{repeats} x {n} requests each, median CPU per request (min-max)")
    for name, values in cpu.items():
        print(
            f"  {name:20} {statistics.median(values) * 1e6:7.0f} us"
            f"  ({min(values) * 1e6:.0f}-{max(values) * 1e6:.0f})  {queries[name]:.2f} queries"
        )


if __name__ == "__main__":
    main()
