"""The product's driver for the side-by-side engine benchmark (the peer harness).

The peer harness, when checked out beside the project, times the same two-level approval in the
product and in other workflow engines, in-process on the same PostgreSQL. Its ``run.sh`` runs
this file (instead of its own copy) with the harness folder on ``PYTHONPATH``, so the
comparison keeps working as the product's internals move. ``make bench-peers`` starts it.

Interface (the harness's ``common.py``): ``NAME``, ``WORK``, ``setup``, ``seed``,
``pending_level1``, ``decide1``, ``prepare2``, ``decide2``, ``count_statements``,
``thread_init``, ``backend_pid``, ``close_thread``, ``extra_statements``; then
``common.main(module)`` parses ``seed N`` / ``round --n --budget --threads --warmup``.

A decision is exactly what ``POST /api/v1/tasks/{id}/approve/`` runs after authentication:
the task decision service with the production settings (DEBUG off, Redis as channel layer and
Celery broker, nothing consuming it). Seeding goes through the services (bench/seed.py's people,
the workflow, one real request), then the pool is copied from that request (``seed_pool``).
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import common  # the harness's timing module, on PYTHONPATH when its run.sh starts this file
except ImportError:  # pragma: no cover - only when started by hand
    sys.exit("bench/peer_driver.py runs under the peer harness (its run.sh); see docs/benchmarks.md")

PG = os.environ.get("PEER_PG", "postgres://postgres@127.0.0.1:5432")
os.environ.setdefault("DATABASE_URL", f"{PG}/{os.environ.get('PRODUCT_DB', 'peer_product')}")
os.environ.setdefault("REDIS_URL", os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/14"))
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "peers-bench-only-secret-key-not-for-production-0123456789abcdefghij")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

NAME = "product"
WORK = {
    "decision1": "lock the request row with the task and the caller's assignment, record the decision, settle the "
    "task by its mode, route stage 2 (compiled plan of the published version: approver resolution, delegations, "
    "SLA due date on the business calendar), insert task + assignment, update the request stage, notification row + "
    "e-mail delivery row (preference lookup), 2 hash-chained audit rows (task.approved, task.assigned), "
    "after commit: WebSocket push to Redis, the e-mail delivery handed to the per-process dispatcher (one Celery "
    "publish per EMAIL_DISPATCH_WINDOW_MS for every decision committed in it)",
    "decision2": "same decision path; no stage left: request approved, notification + e-mail row to the requester, "
    "2 hash-chained audit rows (task.approved, request.approved), after-commit push + e-mail hand-off",
    "history": "assignment decision row, task status, audit rows (tamper-evident chain), notifications",
}

TWO_LEVEL = {
    "key": "two-level",
    "name": "Two-level approval",
    "description": "Manager, then one finance approver.",
    "category": "Finance",
    "reference_prefix": "TWO",
    "steps": [
        {"stage": 1, "name": "Manager approval", "approver_type": "requester_manager", "mode": "any", "sla_hours": 8},
        {
            "stage": 2,
            "name": "Finance approval",
            "approver_type": "user",
            "approver_ref": "finance_approver0@bench.example",
            "mode": "any",
            "sla_hours": 16,
        },
    ],
}
_TXN = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
_users: dict = {}


_SERVICE: list = []


def _task_decide():
    # the service POST tasks/{id}/approve/ calls: in the lifecycle package, or approvals.services before it;
    # resolved once (an import statement per decision cost the driver ~0.3 ms of the product's CPU)
    if not _SERVICE:
        try:
            from approvals.lifecycle.services import task_decide
        except ImportError:
            from approvals.services import task_decide
        _SERVICE.append(task_decide)
    return _SERVICE[0]


def setup() -> None:
    import django

    django.setup()


def thread_init() -> None:
    from django.db import connection

    connection.ensure_connection()


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def close_thread() -> None:
    from django.db import connection

    connection.close()


def seed(n: int) -> dict:
    import seed as product_seed  # bench/seed.py
    from django.db import connection

    from requests import services as request_services
    from workflows import selectors as workflow_selectors
    from workflows import services as workflow_services
    from workflows.demo import PURCHASE_REQUEST

    users = int(os.environ.get("PRODUCT_USERS", "400"))
    departments = int(os.environ.get("PRODUCT_DEPARTMENTS", "20"))
    people = product_seed.seed_people(users, departments)
    admin, members = people["admin"], people["members"]
    definition = workflow_services.workflow_create(
        actor=admin, organization=people["org"], form_schema=PURCHASE_REQUEST["form_schema"], **TWO_LEVEL
    )
    workflow_services.version_publish(actor=admin, version=workflow_selectors.draft_for(definition=definition))
    template = request_services.request_create(
        actor=members[0], workflow="two-level", title="Bench template", data=product_seed.purchase_data(0), submit=True
    )
    pairs = product_seed.seed_pool(members=members, size=n, template=template)
    # demo purchase requests below the legal threshold: the statements of their stage-1 approve
    for i in range(10):
        request_services.request_create(
            actor=members[(i + 1) % len(members)],
            workflow="purchase-request",
            title=f"Demo {i}",
            data={"amount": 480, "vendor": "Contoso", "justification": "statement count"},
            submit=True,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"pool": len(pairs), "users": users, "departments": departments}


def _user(pk):
    from accounts.models import User

    if pk not in _users:
        _users[pk] = User.objects.select_related("organization").get(pk=pk)
    return copy.copy(_users[pk])  # one instance per decision, as one per HTTP request: nothing shared by threads


def _pending(stage: int, key: str, n: int, request_ids=None) -> list:
    from approvals.models import Assignment

    qs = Assignment.objects.filter(
        is_active=True,
        decision="",
        task__status="pending",
        task__stage=stage,
        task__request__status="pending",
        task__request__definition__key=key,
    )
    if request_ids is not None:
        qs = qs.filter(task__request_id__in=request_ids)
    rows = list(qs.order_by("task__request__reference").values_list("task_id", "assignee_id")[:n])
    return [(task_id, _user(user_id)) for task_id, user_id in rows]


def pending_level1(n: int) -> list:
    return _pending(1, "two-level", n)


def prepare2(results: list) -> list:
    # decide1 returns request ids: their stage-2 task and its assignee (untimed)
    found = {}
    for i in range(0, len(results), 500):
        for task_id, user in _pending(2, "two-level", 10**6, request_ids=results[i : i + 500]):
            found[task_id] = user
    return list(found.items())


def decide1(target):
    task_id, actor = target
    return _task_decide()(actor=actor, task_id=task_id, decision="approve").request_id


def decide2(target):
    task_id, actor = target
    return _task_decide()(actor=actor, task_id=task_id, decision="approve").request.status


def _split(queries) -> tuple:
    """(all statements, those that are not transaction control) of a CaptureQueriesContext."""
    sqls = [q["sql"].lstrip().upper() for q in queries.captured_queries]
    return len(sqls), sum(1 for s in sqls if not s.startswith(_TXN))


def count_statements(fn, arg):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        result = fn(arg)
    counted = _split(queries)
    if fn is decide1:  # the next target, looked up outside the count
        result = prepare2([result])[0]
    return counted, result


def extra_statements() -> dict:
    """Statements of the demo purchase-request's stage-1 approve (stage 2: two finance approvers)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    out = []
    for task_id, actor in _pending(1, "purchase-request", 3):
        with CaptureQueriesContext(connection) as queries:
            _task_decide()(actor=actor, task_id=task_id, decision="approve")
        out.append(_split(queries))
    return {"demo_purchase_request_stage1_approve": out}


if __name__ == "__main__":
    common.main(sys.modules[__name__])
