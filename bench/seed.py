"""Seed the benchmark organization and write the load plan (tokens and operation targets).

    DATABASE_URL=... .venv/bin/python bench/seed.py OUT.json [--users 2000] [--departments 100] [--pool 20000]

Organization ``bench`` (UTC, Mon-Fri 09-17): ``--departments`` departments of equal size, the
first member of each is its head and everybody else's manager; as in the demo data, two finance
approvers, one legal approver, a CFO and an org admin; the demo purchase-request workflow, published.
Everything up to here goes through the services (audited like production data).

The approval pool: ``--pool`` pending requests at stage 1, each with its manager's task. One
is created by the real engine (``request_create(submit=True)``); the others are copies of its
rows with their own id, reference, requester, manager and amount, bulk-inserted because the
services would take most of an hour for 20,000 of them. Approving a copy through the API runs
the real engine from there on (stage 2 activation, notifications, audit).

Access tokens are minted here with a 12 h lifetime so the scenarios measure the API, not login
(login is rate-limited by design and dominated by PBKDF2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from accounts import services as account_services  # noqa: E402
from accounts.models import User  # noqa: E402
from approvals.models import ApprovalTask, Assignment  # noqa: E402
from organizations import services as org_services  # noqa: E402
from organizations.models import Organization  # noqa: E402
from requests import services as request_services  # noqa: E402
from requests.models import Request  # noqa: E402
from workflows import selectors as workflow_selectors  # noqa: E402
from workflows import services as workflow_services  # noqa: E402
from workflows.demo import PURCHASE_REQUEST  # noqa: E402
from workflows.models import WorkflowDefinition  # noqa: E402

SLUG = "bench"
ROLES = {
    "finance_approver": ("Finance approver", ["requests.create"]),
    "legal_approver": ("Legal approver", ["requests.create"]),
    "cfo": ("Chief financial officer", ["requests.create", "reports.view"]),
}
TOKEN_LIFETIME = timedelta(hours=12)
rng = random.Random(20261122)


def token(user) -> str:
    access = AccessToken.for_user(user)
    access.set_exp(lifetime=TOKEN_LIFETIME)
    return str(access)


def purchase_data(i: int) -> dict:
    # Mostly under the legal threshold (5000), like real purchase traffic; some go to legal and the CFO.
    amount = rng.choice([120, 480, 950, 1800, 2600, 3900, 4700, 7200, 15000])
    return {"amount": amount, "vendor": f"Vendor {i % 97}", "justification": f"Bench purchase {i}"}


def seed_people(users: int, departments: int) -> dict:
    org = org_services.organization_create(name="Bench Corp", slug=SLUG, timezone="UTC")
    for slug, (name, codes) in ROLES.items():
        account_services.role_create(actor=None, organization=org, slug=slug, name=name, permissions=codes)
    admin = account_services.user_create(
        actor=None, organization=org, email="admin@bench.example", roles=["org_admin"], is_staff=True
    )
    per_dept = max(2, users // departments)
    heads, members = [], []
    for d in range(departments):
        dept = org_services.department_create(actor=admin, organization=org, name=f"Department {d:03d}")
        head = account_services.user_create(
            actor=admin,
            organization=org,
            email=f"head{d:03d}@bench.example",
            department=dept,
            roles=["requester"],
            first_name="Head",
            last_name=f"{d:03d}",
        )
        org_services.department_update(actor=admin, department=dept, head=head)
        heads.append(head)
        for m in range(per_dept - 1):
            members.append(
                account_services.user_create(
                    actor=admin,
                    organization=org,
                    email=f"user{d:03d}-{m:03d}@bench.example",
                    department=dept,
                    manager=head,
                    roles=["requester"],
                    first_name="User",
                    last_name=f"{d:03d}-{m:03d}",
                )
            )
    approvers = []
    for role, count in (("finance_approver", 2), ("legal_approver", 1), ("cfo", 1)):
        for n in range(count):
            approvers.append(
                account_services.user_create(
                    actor=admin, organization=org, email=f"{role}{n}@bench.example", roles=["requester", role]
                )
            )
    definition = workflow_services.workflow_create(actor=admin, organization=org, **{**PURCHASE_REQUEST})
    workflow_services.version_publish(actor=admin, version=workflow_selectors.draft_for(definition=definition))
    return {"org": org, "admin": admin, "heads": heads, "members": members, "approvers": approvers}


def seed_pool(*, members: list, size: int, template=None) -> list[tuple]:
    """``size`` pending requests at stage 1; returns (manager, task id) pairs in random order."""
    if template is None:
        template = request_services.request_create(
            actor=members[0], workflow="purchase-request", title="Bench template", data=purchase_data(0), submit=True
        )
    task = ApprovalTask.objects.get(request=template, stage=1)
    assignment = Assignment.objects.get(task=task)
    definition = WorkflowDefinition.objects.get(pk=template.definition_id)
    prefix = template.reference.split("-")[0]
    start = WorkflowDefinition.all_objects.get(pk=definition.pk).reference_counter
    pairs = [] if template.status != "pending" or task.status != "pending" else [(template.requester.manager, task.pk)]
    batch_r, batch_t, batch_a = [], [], []

    def flush():
        with transaction.atomic():
            Request.objects.bulk_create(batch_r)
            ApprovalTask.objects.bulk_create(batch_t)
            Assignment.objects.bulk_create(batch_a)
        batch_r.clear(), batch_t.clear(), batch_a.clear()

    for i in range(1, size):
        requester = members[i % len(members)]
        req = Request(
            **{f.attname: getattr(template, f.attname) for f in Request._meta.concrete_fields},
        )
        req.id = uuid.uuid4()
        req.reference = f"{prefix}-{start + i:06d}"
        req.requester_id, req.department_id = requester.pk, requester.department_id
        req.title, req.data = f"Bench purchase {i}", purchase_data(i)
        req.status, req.current_stage, req.completed_at = "pending", 1, None  # the template may have moved on
        new_task = ApprovalTask(**{f.attname: getattr(task, f.attname) for f in ApprovalTask._meta.concrete_fields})
        new_task.id, new_task.request_id = uuid.uuid4(), req.id
        new_task.status, new_task.outcome_reason, new_task.completed_at = "pending", "", None
        new_assignment = Assignment(
            **{f.attname: getattr(assignment, f.attname) for f in Assignment._meta.concrete_fields}
        )
        new_assignment.id, new_assignment.task_id = uuid.uuid4(), new_task.id
        new_assignment.assignee_id = requester.manager_id
        new_assignment.decision, new_assignment.comment, new_assignment.decided_at = "", "", None
        batch_r.append(req), batch_t.append(new_task), batch_a.append(new_assignment)
        pairs.append((requester.manager, new_task.pk))
        if len(batch_r) >= 2000:
            flush()
    if batch_r:
        flush()
    WorkflowDefinition.all_objects.filter(pk=definition.pk).update(reference_counter=start + size)
    rng.shuffle(pairs)
    return pairs


def extend(plan_path: Path, size: int) -> None:
    """Add ``size`` requests to the approval pool of an existing plan (the soak needs many)."""
    plan = json.loads(plan_path.read_text())
    org = Organization.objects.get(slug=SLUG)
    members = list(
        User.objects.for_organization(org)
        .filter(manager__isnull=False, email__startswith="user")
        .select_related("manager")
    )
    template = Request.objects.filter(organization=org, title="Bench template").get()
    pairs = seed_pool(members=members, size=size + 1, template=template)
    plan["approve"] += [{"token": token(m), "task": str(t)} for m, t in pairs]
    plan["pool"] = len(plan["approve"])
    plan_path.write_text(json.dumps(plan))
    print(json.dumps({"pool": plan["pool"]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--extend", type=int, default=0, help="add this many to the pool of the plan OUT")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--pool", type=int, default=20000)
    args = parser.parse_args()
    if args.extend:
        return extend(Path(args.out), args.extend)
    if Organization.objects.filter(slug=SLUG).exists():
        sys.exit(f"organization {SLUG!r} exists: seed a fresh database (bench/run.py does)")
    t0 = time.perf_counter()
    people = seed_people(args.users, args.departments)
    t1 = time.perf_counter()
    pairs = seed_pool(members=people["members"], size=args.pool)
    t2 = time.perf_counter()
    tokens: dict = {}

    def tok(user):
        if user.pk not in tokens:
            tokens[user.pk] = token(user)
        return tokens[user.pk]

    members, heads = people["members"], people["heads"]
    by_head: dict = {}
    for member in members:
        by_head.setdefault(member.manager_id, []).append(member)
    plan = {
        "organization": str(people["org"].pk),
        "users": len(members) + len(heads) + len(people["approvers"]) + 1,
        "pool": len(pairs),
        "me": [tok(u) for u in rng.sample(members + heads, min(200, len(members) + len(heads)))],
        "submit": [
            {"token": tok(members[i % len(members)]), "data": purchase_data(i)}
            for i in rng.sample(range(len(members)), min(500, len(members)))
        ],
        "approve": [{"token": tok(manager), "task": str(task_id)} for manager, task_id in pairs],
        "inbox": [tok(h) for h in heads[:50]],
        "list_requester": [tok(m) for m in members[:50]],
        "list_admin": tok(people["admin"]),
        "ws": [
            {"user": str(h.pk), "token": tok(h), "reports": [tok(m) for m in by_head.get(h.pk, [])[:5]]}
            for h in heads[:100]
        ],
        "seed_seconds": {"people": round(t1 - t0, 1), "pool": round(t2 - t1, 1)},
    }
    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would have after a bulk load
        cursor.execute("ANALYZE")
    Path(args.out).write_text(json.dumps(plan))
    print(json.dumps({"users": plan["users"], "pool": plan["pool"], "seed_seconds": plan["seed_seconds"]}))


if __name__ == "__main__":
    main()
