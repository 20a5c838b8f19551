"""Profile one API operation in-process with pyinstrument, against the seeded bench database.

    .venv/bin/python bench/profile_op.py SCENARIO [N] [--sql] [--all]
    .venv/bin/python bench/profile_op.py SCENARIO [N] --cpu   # CPU per operation, 3 rounds, no profiler

SCENARIO: ceiling (a bare JsonResponse through the same middleware), auth_me, submit, approve,
inbox, requests_list_requester or requests_list_admin.

Uses the plan written by the last ``bench/run.py`` (bench/results/plan.json) and the same
settings as the bench servers; prints the call tree of N operations and the SQL query count.
Decisions consume targets from the end of the approval pool, away from what run.py uses.
"""

import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run
from topology import bench_env

os.environ.update(bench_env(run.DATABASE_URL, run.REDIS_URL))
sys.path.insert(0, str(run.ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ceiling_settings")  # production's + the ceiling route

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from pyinstrument import Profiler  # noqa: E402


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    name, n = args[0], int(args[1]) if len(args) > 1 else 50
    plan = json.loads((run.RESULTS / "plan.json").read_text())
    if name == "approve":  # targets still pending, from the tail of the pool
        from approvals.models import ApprovalTask

        pending = set(
            ApprovalTask.objects.filter(pk__in=[a["task"] for a in plan["approve"]], status="pending").values_list(
                "pk", flat=True
            )
        )
        plan["approve"] = [a for a in plan["approve"] if uuid.UUID(a["task"]) in pending][-n:]
    plan["approve_used"] = 0
    ops, _ = run.ops_for(name, plan)
    client = Client()
    statuses = []

    def call(op):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {op['token']}", "HTTP_HOST": "127.0.0.1"}
        if op.get("method", "GET") == "POST":
            return client.post(op["path"], data=op.get("json", {}), content_type="application/json", **headers)
        return client.get(op["path"], **headers)

    call(ops[-1]) if name != "approve" else None  # warm-up (imports, caches)
    if "--cpu" in sys.argv:
        return cpu_per_operation(name, n, ops, call)
    profiler = Profiler(interval=0.0005)
    with CaptureQueriesContext(connection) as queries:
        profiler.start()
        for i in range(n):
            statuses.append(call(ops[i % len(ops)]).status_code)
        profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all="--all" in sys.argv))
    if "--sql" in sys.argv:  # the last operation's queries, with their times
        per_op = len(queries) // n
        for q in queries.captured_queries[-per_op:]:
            print(f"{float(q['time']) * 1000:7.1f} ms  {q['sql']}\n")
    print(f"{n} x {name}: statuses {sorted(set(statuses))}, {len(queries) / n:.1f} queries each")


def cpu_per_operation(name, n, ops, call) -> None:
    """CPU per operation without the profiler: this process's, and its PostgreSQL backend's (/proc)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")
    tick = os.sysconf("SC_CLK_TCK")

    def backend_cpu() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    for _ in range(3):
        t0, b0, w0 = time.process_time(), backend_cpu(), time.perf_counter()
        statuses = {call(ops[i % len(ops)]).status_code for i in range(n)}
        t1, b1, w1 = time.process_time(), backend_cpu(), time.perf_counter()
        print(
            f"{n} x {name}: Python CPU {(t1 - t0) * 1000 / n:.2f} ms, PostgreSQL CPU {(b1 - b0) * 1000 / n:.2f} ms, "
            f"wall {(w1 - w0) * 1000 / n:.2f} ms each; statuses {sorted(statuses)}; load {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
