"""What the SLA scan costs: M due tasks among N pending ones, scanned the way production scans.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> REDIS_URL=redis://127.0.0.1:6379/<n> \
        .venv/bin/python bench/sla_scan.py [--pending 100000] [--due 10000]

Fixture (organization ``bench-sla``, reused when present with the same number of requests):
~300 users in departments with managers (staff -> team lead -> department head -> director),
one published workflow made through ``workflows.services`` (stage 1: the requester's manager,
16 business hours, reminder at 50 %, escalate to the manager, ``notify``, repeat every 8 h,
at most 2 escalations; stage 2: finance), and N pending requests, each with its stage-1 task
and one assignment (the requester's team lead), written with COPY the way the engine writes
them (activated_at, due_at, remind_at, next_escalation_at from ``schedule_task_sla`` on the
organization's calendar). The tasks are written anew on every run (times are relative to now).

"Due" means: M // 2 tasks whose reminder is due (remind_at passed, deadline still ahead) and
M - M // 2 whose first escalation is due (deadline passed; they were reminded earlier, so they
carry their level-0 record). The other N - M have every deadline at least an hour ahead.

Then ``approvals.sla_scan.run_scan()`` (what ``manage.py sla_scan`` and the Celery task call) is
called until a scan finds nothing to do, timed as a whole. The last stdout line is one JSON
object; ``ok`` says whether exactly M records were created (each task and level once) with
their audit rows, notifications and e-mail deliveries. E-mail tasks are queued to the broker
(REDIS_URL), not sent; the queued messages stay there (point REDIS_URL at a scratch db).
Writes into the database it is pointed at; never point it at production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if not os.environ.get("DEBUG"):
    # Production-like (DEBUG off: no query log); the settings then want these set.
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x7Qk2pLm9Rv4Tz8Wn3Yc6Hb1Jd5Fg0Sa" * 2)
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import django
from standalone import backend_cpu_seconds

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import JSONField  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Role, RoleMembership, User  # noqa: E402
from accounts.services import role_create  # noqa: E402
from approvals.models import ApprovalTask, Assignment, EscalationRecord, TaskStatus  # noqa: E402
from approvals.sla import schedule_task_sla  # noqa: E402
from approvals.sla_scan import run_scan  # noqa: E402
from auditlogs.models import AuditLog  # noqa: E402
from notifications.models import EmailDelivery, Notification  # noqa: E402
from organizations import services as org_services  # noqa: E402
from organizations.calendar import BusinessCalendar  # noqa: E402
from organizations.models import Department, Organization  # noqa: E402
from requests.models import Request, RequestStatus  # noqa: E402
from workflows import services as wf_services  # noqa: E402
from workflows.models import Step, VersionStatus, WorkflowDefinition  # noqa: E402

SLUG = "bench-sla"
WORKFLOW_KEY = "bench-purchase"
DEPARTMENTS, LEADS_PER_DEPARTMENT, STAFF = 8, 5, 250
MARGIN = dt.timedelta(hours=1)  # no deadline within this of "now": nothing turns due while the bench runs


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- fixture: people and workflow (made once) ------------------------------------------------------
def ensure_people(org: Organization) -> dict:
    users = list(User.objects.filter(organization=org).order_by("email"))
    if not users:
        password = make_password(None)  # unusable: nobody logs in as a bench user
        now = timezone.now()
        depts = Department.objects.bulk_create(
            [Department(organization=org, name=f"Department {d + 1}") for d in range(DEPARTMENTS)]
        )

        def user(email, **kw):
            return User(email=email, organization=org, password=password, date_joined=now, **kw)

        director = user(f"director@{SLUG}.test", first_name="Dana", last_name="Director", title="Director")
        admin = user(f"admin@{SLUG}.test", first_name="Ada", last_name="Admin", manager=director)
        heads = [user(f"head{d + 1:02d}@{SLUG}.test", department=dep, manager=director) for d, dep in enumerate(depts)]
        leads = [
            user(f"lead{d + 1:02d}-{k + 1}@{SLUG}.test", department=dep, manager=heads[d])
            for d, dep in enumerate(depts)
            for k in range(LEADS_PER_DEPARTMENT)
        ]
        staff = [
            user(
                f"staff{i + 1:04d}@{SLUG}.test",
                department=leads[i % len(leads)].department,
                manager=leads[i % len(leads)],
            )
            for i in range(STAFF)
        ]
        # Managers first: a bulk insert cannot point at rows later in the same batch.
        for group in ([director], [admin, *heads], leads, staff):
            User.objects.bulk_create(group)
        for dep, head in zip(depts, heads, strict=True):
            dep.head = head
        Department.objects.bulk_update(depts, ["head"])
        roles = {r.slug: r for r in Role.objects.filter(organization=org)}
        if "finance" not in roles:
            roles["finance"] = role_create(actor=None, organization=org, slug="finance", name="Finance", permissions=[])
        everyone = [director, admin, *heads, *leads, *staff]
        memberships = [RoleMembership(organization=org, role=roles["requester"], user=u) for u in everyone]
        memberships += [RoleMembership(organization=org, role=roles["org_admin"], user=u) for u in (admin, director)]
        memberships += [RoleMembership(organization=org, role=roles["finance"], user=u) for u in heads[:2]]
        RoleMembership.objects.bulk_create(memberships)
        users = list(User.objects.filter(organization=org).order_by("email"))
    by_email = {u.email: u for u in users}
    return {
        "admin": by_email[f"admin@{SLUG}.test"],
        "staff": [u for u in users if u.email.startswith("staff")],
        "count": len(users),
    }


def ensure_workflow(org: Organization, admin: User) -> WorkflowDefinition:
    definition = WorkflowDefinition.objects.filter(organization=org, key=WORKFLOW_KEY).first()
    if definition is None:
        definition = wf_services.workflow_create(
            actor=admin,
            organization=org,
            key=WORKFLOW_KEY,
            name="Bench purchase",
            reference_prefix="BEN",
            form_schema={"type": "object", "properties": {"amount": {"type": "number"}, "item": {"type": "string"}}},
            steps=[
                {
                    "stage": 1,
                    "name": "Manager approval",
                    "approver_type": "requester_manager",
                    "sla_hours": 16,
                    "reminder_at_percent": 50,
                    "escalate_to": "manager",
                    "on_breach": "notify",
                    "escalation_repeat_hours": 8,
                    "max_escalations": 2,
                },
                {
                    "stage": 2,
                    "name": "Finance approval",
                    "approver_type": "role",
                    "approver_ref": "finance",
                    "sla_hours": 24,
                    "reminder_at_percent": 75,
                    "escalate_to": "role",
                    "escalate_to_ref": "org_admin",
                    "on_breach": "notify",
                    "max_escalations": 1,
                },
            ],
        )
    version = definition.versions.order_by("-number").first()
    if version.status == VersionStatus.DRAFT:
        wf_services.version_publish(actor=admin, version=version)
    return definition


# --- fixture: requests and tasks (tasks rewritten every run) ---------------------------------------
def copy_rows(model, objs) -> None:
    """COPY model instances into their table, every concrete column as the ORM would write it.

    Only JSON needs the ORM's preparation (its encoder); psycopg writes the other values as they are.
    """
    fields = model._meta.concrete_fields
    prepare = [isinstance(f, JSONField) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row(
                [
                    f.get_db_prep_save(getattr(obj, f.attname), connection) if p else getattr(obj, f.attname)
                    for f, p in zip(fields, prepare, strict=True)
                ]
            )


def clear_org_rows(org: Organization, *, requests: bool) -> None:
    """Remove what a previous run wrote (audit rows stay: the log is append-only)."""
    with connection.cursor() as cursor:
        for table, where in (
            (EmailDelivery._meta.db_table, "organization_id = %s"),
            (Notification._meta.db_table, "organization_id = %s"),
            (EscalationRecord._meta.db_table, "organization_id = %s"),
            (Assignment._meta.db_table, "organization_id = %s"),
            (ApprovalTask._meta.db_table, "organization_id = %s"),
        ):
            cursor.execute(f"DELETE FROM {table} WHERE {where}", [org.pk])
        if requests:
            cursor.execute(f"DELETE FROM {Request._meta.db_table} WHERE organization_id = %s", [org.pk])


def activation_times(org: Organization, step: Step, now: dt.datetime) -> dict[str, list]:
    """Activation instants (10 minutes apart over the last 6 weeks) sorted by what is due now.

    Each entry is (activated_at, due_at, remind_at, next_escalation_at) from ``schedule_task_sla``.
    """
    cal = BusinessCalendar.for_organization(org)
    out = {"reminder": [], "escalation": [], "future": []}
    probe = ApprovalTask(organization=org, step=step)
    start = now - dt.timedelta(minutes=10)
    for k in range(6 * 7 * 24 * 6):
        probe.activated_at = (start - dt.timedelta(minutes=10 * k)).replace(second=0, microsecond=0)
        schedule_task_sla(task=probe, calendar=cal)
        times = (probe.activated_at, probe.due_at, probe.remind_at, probe.next_escalation_at)
        if probe.remind_at > now + MARGIN:
            out["future"].append(times)
        elif probe.remind_at < now - MARGIN and probe.due_at > now + MARGIN:
            out["reminder"].append(times)
        elif now - dt.timedelta(days=7) < probe.due_at < now - MARGIN:
            out["escalation"].append(times)
    return out


def seed_requests(org, definition, people, pending: int) -> list:
    """N pending requests (ids, requester) in reference order; reused when the count matches."""
    existing = list(
        Request.all_objects.filter(organization=org).order_by("reference").values_list("pk", "requester_id")
    )
    if len(existing) == pending:
        return existing
    clear_org_rows(org, requests=True)
    version = definition.versions.get(status=VersionStatus.PUBLISHED)
    staff = people["staff"]
    now = timezone.now()
    rows = []
    for i in range(pending):
        requester = staff[i % len(staff)]
        rows.append(
            Request(
                organization_id=org.pk,
                workflow_version_id=version.pk,
                definition_id=definition.pk,
                requester_id=requester.pk,
                department_id=requester.department_id,
                title=f"Laptop for {requester.email.split('@')[0]} #{i + 1}",
                data={"amount": 500 + (i * 37) % 4500, "item": "laptop"},
                status=RequestStatus.PENDING,
                current_stage=1,
                round=1,
                reference=f"BEN-{i + 1:06d}",
                submitted_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    copy_rows(Request, rows)
    WorkflowDefinition.all_objects.filter(pk=definition.pk).update(reference_counter=pending)
    return [(r.pk, r.requester_id) for r in rows]


def seed_tasks(org, definition, requests: list, due: int) -> dict:
    """One pending stage-1 task and its assignment per request; ``due`` of them due now."""
    clear_org_rows(org, requests=False)
    step = Step.objects.get(version__definition=definition, version__status=VersionStatus.PUBLISHED, stage=1)
    now = timezone.now()
    times = activation_times(org, step, now)
    managers = dict(User.objects.filter(organization=org).values_list("pk", "manager_id"))
    kinds = {}
    tasks, assignments, records = [], [], []
    # The due tasks are spread over the whole set (every k-th request), reminders and escalations
    # alternating (escalations get the odd one out).
    stride = max(1, len(requests) // max(due, 1))
    for i, (request_id, requester_id) in enumerate(requests):
        j, off = divmod(i, stride)
        kind = "future" if off or j >= due else "reminder" if j % 2 else "escalation"
        pool = times[kind]
        activated, due_at, remind_at, next_at = pool[i % len(pool)]
        task = ApprovalTask(
            id=uuid.uuid4(),
            organization_id=org.pk,
            request_id=request_id,
            step_id=step.pk,
            stage=1,
            round=1,
            status=TaskStatus.PENDING,
            activated_at=activated,
            due_at=due_at,
            remind_at=remind_at,
            next_escalation_at=next_at,
            escalation_level=0,
            created_at=activated,
            updated_at=activated,
        )
        kinds[task.id] = kind
        assignments.append(
            Assignment(
                organization_id=org.pk,
                task_id=task.id,
                assignee_id=managers[requester_id],
                reason="route",
                created_at=activated,
                updated_at=activated,
            )
        )
        if kind == "escalation":  # reminded when its reminder came due, as the scan would have
            task.reminded_at = remind_at
            records.append(
                EscalationRecord(
                    organization_id=org.pk,
                    task_id=task.id,
                    level=0,
                    action="remind",
                    details={"recipients": [str(managers[requester_id])]},
                    created_at=remind_at,
                    updated_at=remind_at,
                )
            )
        tasks.append(task)
    with transaction.atomic():
        copy_rows(ApprovalTask, tasks)
        copy_rows(Assignment, assignments)
        copy_rows(EscalationRecord, records)
    with connection.cursor() as cursor:
        for model in (Request, ApprovalTask, Assignment, EscalationRecord, Notification, EmailDelivery, AuditLog):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return kinds


# --- the measurement -----------------------------------------------------------------------------
def broker_queue_length() -> int | None:
    url = getattr(settings, "CELERY_BROKER_URL", "")
    if not url.startswith("redis"):
        return None
    import redis

    return redis.Redis.from_url(url).llen("celery")


def verify(org, kinds: dict, started: dt.datetime, audit_seq_before: int) -> dict:
    """Exactly one record per due task and level, with its audit row, notifications and e-mails."""
    recs = list(
        EscalationRecord.objects.filter(organization=org, created_at__gte=started).values_list("task_id", "level")
    )
    expected = {(t, 0 if k == "reminder" else 1) for t, k in kinds.items() if k != "future"}
    audits = dict.fromkeys(("task.reminded", "task.escalated"), 0)
    for action in AuditLog.objects.filter(chain=str(org.pk), sequence__gt=audit_seq_before).values_list(
        "action", flat=True
    ):
        audits[action] = audits.get(action, 0) + 1
    n_rem = sum(1 for k in kinds.values() if k == "reminder")
    n_esc = sum(1 for k in kinds.values() if k == "escalation")
    notes = Notification.objects.filter(organization=org)
    n_notes = {
        "task_reminder": notes.filter(kind="task_reminder").count(),
        "task_escalated": notes.filter(kind="task_escalated").count(),
    }
    deliveries = EmailDelivery.objects.filter(organization=org).count()
    still_due = (
        ApprovalTask.objects.filter(organization=org, status=TaskStatus.PENDING)
        .filter(next_escalation_at__lte=timezone.now())
        .count()
        + ApprovalTask.objects.filter(
            organization=org, status=TaskStatus.PENDING, reminded_at__isnull=True, remind_at__lte=timezone.now()
        ).count()
    )
    checks = {
        "records_exact": len(recs) == len(set(recs)) == len(expected) and set(recs) == expected,
        "audit_exact": audits["task.reminded"] == n_rem and audits["task.escalated"] == n_esc,
        # a reminder goes to the assignee; an escalation to the assignee and their manager
        "notifications_exact": n_notes == {"task_reminder": n_rem, "task_escalated": 2 * n_esc},
        "emails_exact": deliveries == n_rem + 2 * n_esc,
        "nothing_left_due": still_due == 0,
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "records": len(recs),
        "audit_rows": audits["task.reminded"] + audits["task.escalated"],
        "notifications": sum(n_notes.values()),
        "email_deliveries": deliveries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000, help="pending tasks in total (N)")
    parser.add_argument("--due", type=int, default=10_000, help="of which due now (M)")
    args = parser.parse_args()
    if not 0 <= args.due <= args.pending:
        parser.error("--due must be between 0 and --pending")
    if connection.vendor != "postgresql":
        parser.error("needs PostgreSQL (DATABASE_URL)")

    t0 = time.perf_counter()
    org = Organization.objects.filter(slug=SLUG).first() or org_services.organization_create(
        name="Bench SLA", slug=SLUG, timezone="Europe/Berlin"
    )
    people = ensure_people(org)
    definition = ensure_workflow(org, people["admin"])
    requests = seed_requests(org, definition, people, args.pending)
    kinds = seed_tasks(org, definition, requests, args.due)
    seed_seconds = time.perf_counter() - t0
    log(f"fixture: {args.pending} pending tasks, {args.due} due, {people['count']} users in {seed_seconds:.1f} s")

    queued_before = broker_queue_length()
    audit_seq_before = (
        AuditLog.objects.filter(chain=str(org.pk)).order_by("-sequence").values_list("sequence", flat=True).first() or 0
    )
    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    started = timezone.now()
    scans, reports, busy, errors = 0, [], 0, 0
    db_cpu0 = backend_cpu_seconds(connection)
    cpu0 = time.process_time()
    t1 = time.perf_counter()
    with connection.execute_wrapper(count):
        while True:
            report = run_scan()
            scans += 1
            busy += report.busy
            errors += len(report.errors)
            done = len(report.reminders) + len(report.escalations)
            reports.append(done)
            log(f"scan {scans}: {len(report.reminders)} reminders, {len(report.escalations)} escalations")
            if not done and not report.busy and not report.errors:
                break
            if scans > 10 + 2 * args.due:  # something keeps failing: stop, verification says so
                break
    seconds = time.perf_counter() - t1
    cpu = time.process_time() - cpu0
    db_cpu1 = backend_cpu_seconds(connection)
    processed = sum(reports)
    queued_after = broker_queue_length()
    result = {
        "scenario": "sla_scan",
        "pending": args.pending,
        "due": args.due,
        "processed": processed,
        "seconds": round(seconds, 3),
        "per_task_ms": round(1000 * seconds / processed, 3) if processed else None,
        "scans": scans,
        "per_scan": reports,
        # CPU spent by this process and by its PostgreSQL backend: less sensitive than wall time
        # to whatever else the machine is doing
        "cpu_seconds": round(cpu, 2),
        "db_cpu_seconds": None if db_cpu0 is None or db_cpu1 is None else round(db_cpu1 - db_cpu0, 2),
        "queries": queries[0],
        "queries_per_task": round(queries[0] / processed, 2) if processed else None,
        "busy": busy,
        "errors": errors,
        "limit": settings.SLA_SCAN_LIMIT,
        "batch_size": settings.SLA_SCAN_BATCH_SIZE,
        "email_tasks_queued": None if queued_before is None else queued_after - queued_before,
        "seed_seconds": round(seed_seconds, 1),
    }
    result.update(verify(org, kinds, started, audit_seq_before))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
