"""The scan under failure: concurrent scans, a SIGKILLed worker, and what it costs (EXPLAIN)."""

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import ApprovalTask, EscalationRecord, TaskStatus
from approvals.sla_scan import claim_batch, escalation_candidates, reminder_candidates, run_scan
from approvals.tests.test_sla_support import make_sla_task
from auditlogs.models import AuditLog
from core.testing import make_org, make_user
from notifications.models import Notification

pytestmark = pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (row locks, EXPLAIN)")

ROOT = Path(__file__).resolve().parents[2]
PAST = dt.datetime(2020, 1, 6, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def hold_batches():
    """Keep each scan batch's transaction open for a while, from the database side.

    A statement trigger on the escalation records (every batch inserts them before its effects)
    sleeps inside the batch's transaction: the production code has no test hook for it.
    """

    def hold(seconds: float) -> None:
        with connection.cursor() as cur:
            cur.execute(
                "CREATE OR REPLACE FUNCTION test_hold_batch() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END $$"
            )
            cur.execute(
                "CREATE TRIGGER test_hold_batch AFTER INSERT ON approvals_escalationrecord "
                "FOR EACH STATEMENT EXECUTE FUNCTION test_hold_batch()"
            )

    yield hold
    with connection.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_hold_batch ON approvals_escalationrecord")
        cur.execute("DROP FUNCTION IF EXISTS test_hold_batch()")


def overdue_tasks(n: int, *, reminder=True):
    org = make_org(f"fail-{os.getpid()}-{n}-{time.monotonic_ns()}")
    boss = make_user(org, f"boss@{org.slug}.test")
    approver = make_user(org, f"approver@{org.slug}.test", manager=boss)
    requester = make_user(org, f"req@{org.slug}.test")
    tasks = [
        make_sla_task(
            org,
            assignees=[approver],
            requester=requester,
            activated_at=PAST,
            reminder_at_percent=50 if reminder else None,
            escalation_repeat_hours=4,
            max_escalations=3,
        )
        for _ in range(n)
    ]
    return org, tasks


def assert_exactly_once(tasks, *, levels):
    ids = [t.pk for t in tasks]
    recs = list(EscalationRecord.objects.filter(task_id__in=ids).values_list("task_id", "level"))
    assert sorted(recs) == sorted((pk, lvl) for pk in ids for lvl in levels)
    esc = [lvl for lvl in levels if lvl > 0]
    assert AuditLog.objects.filter(action="task.escalated", target_id__in=[str(i) for i in ids]).count() == len(
        ids
    ) * len(esc)
    if 0 in levels:
        assert AuditLog.objects.filter(action="task.reminded", target_id__in=[str(i) for i in ids]).count() == len(ids)
        assert Notification.objects.filter(kind="task_reminder").count() == len(ids)
    # escalation notifications go to the manager and the assignee: two per level
    assert Notification.objects.filter(kind="task_escalated").count() == 2 * len(ids) * len(esc)
    for t in ApprovalTask.objects.filter(pk__in=ids):
        assert t.escalation_level == len(esc)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [3, 10])
def test_two_concurrent_scans_do_each_step_exactly_once(settings, hold_batches, batch):
    settings.SLA_SCAN_BATCH_SIZE = batch
    hold_batches(0.01)  # keep each transaction open a little: real overlap
    _, tasks = overdue_tasks(24)
    now = dt.datetime(2020, 1, 7, 9, 0, tzinfo=dt.UTC)
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def scan():
        try:
            barrier.wait()
            reports.append(run_scan(now=now))
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(not r.errors for r in reports)
    # together the two scans did every reminder and escalation once; neither did one twice
    assert sum(len(r.reminders) for r in reports) == 24
    assert sum(len(r.escalations) for r in reports) == 24
    assert_exactly_once(tasks, levels=[0, 1])
    # whatever one scan skipped as busy the other did; a later scan has nothing left at this time
    late = run_scan(now=now)
    assert (late.reminders, late.escalations, late.busy) == ([], [], 0)


@pytest.mark.django_db(transaction=True)
def test_retry_and_overlapping_levels_stay_exact():
    _, tasks = overdue_tasks(5, reminder=False)
    t0 = dt.datetime(2020, 1, 7, 9, 0, tzinfo=dt.UTC)
    for _ in range(3):
        run_scan(now=t0)  # the same scan delivered three times
    assert_exactly_once(tasks, levels=[1])
    run_scan(now=t0 + dt.timedelta(hours=4))  # next level 4 business hours later
    run_scan(now=t0 + dt.timedelta(hours=4))
    assert_exactly_once(tasks, levels=[1, 2])


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_killed_with_sigkill_mid_scan_loses_nothing_and_doubles_nothing(hold_batches):
    _, tasks = overdue_tasks(6, reminder=False)
    hold_batches(3)  # each batch's transaction stays open 3 s before commit
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "SLA_SCAN_BATCH_SIZE": "2",  # batches of two tasks, each one transaction
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sla_scan"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while EscalationRecord.objects.count() < 1:  # the first batch committed; the second is in flight
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the worker never committed an escalation"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    # the first batch whole, nothing of the one in flight (rolled back entirely)
    done = set(EscalationRecord.objects.values_list("task_id", flat=True))
    assert len(done) == 2
    assert Notification.objects.filter(kind="task_escalated").count() == 4
    assert {str(pk) for pk in done} == set(
        AuditLog.objects.filter(action="task.escalated").values_list("target_id", flat=True)
    )
    assert set(ApprovalTask.objects.filter(escalation_level=1).values_list("pk", flat=True)) == done

    # The next scan (the next beat tick) does the rest. The killed backend may hold its locks for a
    # moment until PostgreSQL notices the dead client: its task is then "busy" and taken next time.
    for _ in range(100):
        report = run_scan()
        if not report.busy and not ApprovalTask.objects.filter(escalation_level=0).exists():
            break
        time.sleep(0.1)
    assert_exactly_once(tasks, levels=[1])
    assert run_scan().escalations == []


@pytest.mark.django_db(transaction=True)
def test_claim_queries_use_the_partial_indexes():
    """Cost proportional to what is due: the claim reads the small partial indexes, not the table."""
    org, (task,) = overdue_tasks(1)
    now = dt.datetime(2020, 1, 7, 9, 0, tzinfo=dt.UTC)
    future = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    base = dict(organization=org, request=task.request, step=task.step, stage=1, activated_at=PAST)
    rows = [
        # most rows are settled (outside both partial indexes) ...
        ApprovalTask(round=r, status=TaskStatus.APPROVED, due_at=PAST, next_escalation_at=PAST, **base)
        for r in range(2, 20002)
    ] + [
        # ... and many pending ones are not due yet
        ApprovalTask(
            round=r, status=TaskStatus.PENDING, due_at=future, remind_at=future, next_escalation_at=future, **base
        )
        for r in range(20002, 23002)
    ]
    ApprovalTask.objects.bulk_create(rows, batch_size=2000)
    with connection.cursor() as cur:
        cur.execute("ANALYZE approvals_approvaltask")

    for qs, index in (
        (escalation_candidates(now), "task_pending_escalation"),
        (reminder_candidates(now), "task_pending_reminder"),
    ):
        with CaptureQueriesContext(connection) as ctx:
            claimed = claim_batch(qs, size=50)
        assert [pk for pk, _ in claimed] == [task.pk]
        sql = next(q["sql"] for q in ctx.captured_queries if "SKIP LOCKED" in q["sql"])
        with connection.cursor() as cur:
            cur.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cur.fetchall())
        assert index in plan, plan
        assert "Seq Scan on approvals_approvaltask" not in plan, plan
