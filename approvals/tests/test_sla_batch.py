"""The scan in batches: one transaction per batch, a query count that does not grow with it,
a failing task isolated, engine actions in transactions of their own, and the per-scan limit."""

import datetime as dt
import threading
import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from approvals import sla_scan
from approvals.models import ApprovalTask, EscalationRecord, TaskStatus
from approvals.sla_scan import run_scan
from approvals.tests.test_sla_support import make_sla_task
from auditlogs.models import AuditLog
from notifications.models import EmailDelivery, Notification
from requests.models import Request

MON = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)  # Monday 09:00, org in UTC, Mon-Fri 9-17
LATE = dt.datetime(2026, 1, 12, 18, 0, tzinfo=dt.UTC)  # reminders (13:00) and escalations (17:00) due


def tasks_for(org, people, n, **kwargs):
    """n pending tasks of one step (as in real life: many requests of one workflow)."""
    kwargs.setdefault("reminder_at_percent", 50)
    kwargs.setdefault("escalation_repeat_hours", 4)
    kwargs.setdefault("max_escalations", 2)
    first = make_sla_task(
        org, assignees=[people["approver"]], requester=people["requester"], activated_at=MON, **kwargs
    )
    return [first] + [
        make_sla_task(
            org, assignees=[people["approver"]], requester=people["requester"], activated_at=MON, step=first.step
        )
        for _ in range(n - 1)
    ]


def scan_queries(org, people, n):
    """Statements of one scan over n reminders + n escalations."""
    tasks_for(org, people, n)
    with CaptureQueriesContext(connection) as ctx:
        report = run_scan(now=LATE)
    assert (len(report.reminders), len(report.escalations), report.errors) == (n, n, [])
    return len(ctx.captured_queries)


def test_queries_per_batch_do_not_grow_with_its_size(org, people, settings):
    settings.SLA_SCAN_BATCH_SIZE = 50
    # locks, records, task updates, notifications, e-mails and audit rows: a few statements each
    # per batch, however many tasks it holds. A first scan fills the per-process caches (notification
    # preferences, webhook endpoints), so the two measured scans compare warm with warm.
    scan_queries(org, people, 1)
    assert scan_queries(org, people, 12) == scan_queries(org, people, 3)


def test_batch_writes_every_effect_once(org, people, settings):
    settings.SLA_SCAN_BATCH_SIZE = 4
    tasks = tasks_for(org, people, 10)
    report = run_scan(now=LATE)
    assert (len(report.reminders), len(report.escalations)) == (10, 10)
    ids = [t.pk for t in tasks]
    assert sorted(EscalationRecord.objects.values_list("task_id", "level")) == sorted(
        (pk, lvl) for pk in ids for lvl in (0, 1)
    )
    assert Notification.objects.filter(kind="task_reminder").count() == 10
    assert Notification.objects.filter(kind="task_escalated").count() == 20  # the assignee and the manager
    assert EmailDelivery.objects.count() == 30
    assert AuditLog.objects.filter(action__in=["task.reminded", "task.escalated"]).count() == 20
    for task in ApprovalTask.objects.filter(pk__in=ids):
        assert task.reminded_at == LATE and task.escalation_level == 1
        assert task.next_escalation_at == dt.datetime(2026, 1, 13, 13, 0, tzinfo=dt.UTC)
    again = run_scan(now=LATE)
    assert (again.reminders, again.escalations) == ([], [])


def test_one_failing_task_does_not_hold_up_its_batch(org, people, monkeypatch):
    tasks = tasks_for(org, people, 4, reminder_at_percent=None)
    bad = tasks[2]
    real = sla_scan.resolve_escalation_targets

    def fails_for_one(task, assignees, lookups=None):
        if task.pk == bad.pk:
            raise RuntimeError("boom")
        return real(task, assignees, lookups)

    monkeypatch.setattr(sla_scan, "resolve_escalation_targets", fails_for_one)
    report = run_scan(now=LATE)
    assert sorted(i.task_id for i in report.escalations) == sorted(str(t.pk) for t in tasks if t != bad)
    assert len(report.errors) == 1 and str(bad.pk) in report.errors[0]  # tried once, not again and again
    assert not EscalationRecord.objects.filter(task=bad).exists()
    assert not AuditLog.objects.filter(action="task.escalated", target_id=str(bad.pk)).exists()

    monkeypatch.setattr(sla_scan, "resolve_escalation_targets", real)
    report = run_scan(now=LATE)  # the next scan retries it
    assert [i.task_id for i in report.escalations] == [str(bad.pk)]
    assert EscalationRecord.objects.filter(level=1).count() == 4


def test_engine_actions_share_a_claim_but_not_a_transaction(org, people, settings):
    settings.SLA_SCAN_BATCH_SIZE = 10
    notify = tasks_for(org, people, 3, reminder_at_percent=None)
    (auto,) = tasks_for(org, people, 1, reminder_at_percent=None, on_breach="auto_approve")
    report = run_scan(now=LATE)
    assert sorted((i.task_id, i.action) for i in report.escalations) == sorted(
        [(str(t.pk), "notify") for t in notify] + [(str(auto.pk), "auto_approve")]
    )
    auto.refresh_from_db()
    assert auto.status == TaskStatus.APPROVED and auto.escalation_level == 1
    assert Request.objects.get(pk=auto.request_id).status == "approved"
    # the engine's audit rows of the auto-approval follow every audit row of the shared batch
    rows = list(AuditLog.objects.filter(organization=org).order_by("sequence").values_list("action", "target_id"))
    escalated = [k for k, (action, _) in enumerate(rows) if action == "task.escalated"]
    engine = [k for k, (action, _) in enumerate(rows) if action.startswith(("task.approved", "request.approved"))]
    shared = [k for k in escalated if rows[k][1] != str(auto.pk)]
    assert engine and max(shared) < min(engine)
    assert EscalationRecord.objects.filter(level=1).count() == 4


def test_limit_caps_each_kind_and_the_next_scan_continues(org, people):
    tasks_for(org, people, 5, reminder_at_percent=None)
    done = [len(run_scan(now=LATE, limit=2).escalations) for _ in range(4)]
    assert done == [2, 2, 1, 0]


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (row locks)")
@pytest.mark.django_db(transaction=True)
def test_a_request_held_by_a_decision_is_left_for_the_next_scan(org, people, settings):
    settings.SLA_SCAN_BATCH_SIZE = 10
    tasks = tasks_for(org, people, 5, reminder_at_percent=None)
    held = tasks[1]
    locked, release = threading.Event(), threading.Event()

    def decision():
        try:
            with transaction.atomic():
                list(Request.objects.select_for_update().filter(pk=held.request_id))
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=decision)
    thread.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        report = run_scan(now=LATE)
        assert time.monotonic() - started < 10  # never waited for the decision
    finally:
        release.set()
        thread.join(30)
    assert report.busy == 1 and len(report.escalations) == 4
    assert not EscalationRecord.objects.filter(task=held).exists()
    report = run_scan(now=LATE)
    assert [i.task_id for i in report.escalations] == [str(held.pk)]
    assert EscalationRecord.objects.filter(level=1).count() == 5
