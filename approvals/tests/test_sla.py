import datetime as dt
import zoneinfo

from django.core.management import call_command

from approvals.models import ApprovalTask, Assignment, EscalationRecord, TaskStatus
from approvals.sla import is_task_overdue, overdue_request_exists, overdue_task_q, schedule_task_sla
from approvals.sla_scan import run_scan
from approvals.tasks import sla_scan
from approvals.tests.test_sla_support import make_sla_task
from auditlogs.models import AuditLog
from core.testing import make_org, make_user
from notifications.models import Notification
from organizations.models import Holiday
from requests.models import Request

UTC = dt.UTC
MON = dt.datetime(2026, 1, 12, 9, 0, tzinfo=UTC)  # Monday 09:00, org in UTC, Mon-Fri 9-17


def at(day_offset: int, hour: int, minute: int = 0) -> dt.datetime:
    return MON + dt.timedelta(days=day_offset, hours=hour - 9, minutes=minute)


def task_for(org, people, **kwargs) -> ApprovalTask:
    kwargs.setdefault("assignees", [people["approver"]])
    return make_sla_task(org, requester=people["requester"], activated_at=MON, **kwargs)


def state(task):
    task.refresh_from_db()
    return task.escalation_level, task.next_escalation_at, task.reminded_at


def counts():
    return (
        EscalationRecord.objects.count(),
        Notification.objects.count(),
        AuditLog.objects.filter(action__in=["task.reminded", "task.escalated"]).count(),
    )


# --- scheduling ---------------------------------------------------------------------------------
def test_schedule_uses_business_calendar(db):
    org = make_org("sched-berlin", timezone="Europe/Berlin")
    Holiday.objects.create(organization=org, date=dt.date(2026, 3, 30), name="Closed Monday")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    approver = make_user(org, "a@sched.test")
    start = dt.datetime(2026, 3, 27, 16, 0, tzinfo=berlin)  # Friday 16:00 CET; DST starts Sunday
    task = make_sla_task(
        org, assignees=[approver], requester=approver, activated_at=start, sla_hours=8, reminder_at_percent=50
    )
    # 4h: 1h Friday, Monday is a holiday, 3h Tuesday -> Tue 12:00 CEST; 8h -> Tue 16:00 CEST
    assert task.remind_at == dt.datetime(2026, 3, 31, 12, 0, tzinfo=berlin)
    assert task.due_at == dt.datetime(2026, 3, 31, 16, 0, tzinfo=berlin)
    assert task.next_escalation_at == task.due_at
    assert task.escalation_level == 0 and task.reminded_at is None


def test_schedule_without_sla_or_escalations(org, people):
    task = task_for(org, people, sla_hours=None, reminder_at_percent=50)
    assert (task.due_at, task.remind_at, task.next_escalation_at) == (None, None, None)
    task = task_for(org, people, max_escalations=0)
    assert task.due_at == at(0, 17) and task.remind_at is None and task.next_escalation_at is None
    # schedule_task_sla does not save
    task.step.sla_hours = 16
    schedule_task_sla(task=task)
    assert task.due_at == at(1, 17)
    assert ApprovalTask.objects.get(pk=task.pk).due_at == at(0, 17)


# --- reminders ------------------------------------------------------------------------------------
def test_reminder_once(org, people):
    task = task_for(org, people, reminder_at_percent=50)
    assert task.remind_at == at(0, 13)
    assert run_scan(now=at(0, 12, 59)).reminders == []
    report = run_scan(now=at(0, 13))
    assert [r.task_id for r in report.reminders] == [str(task.pk)]
    assert state(task)[2] == at(0, 13)
    rec = EscalationRecord.objects.get(task=task)
    assert (rec.level, rec.action) == (0, "remind")
    notes = Notification.objects.filter(kind="task_reminder")
    assert [n.recipient_id for n in notes] == [people["approver"].pk]
    assert AuditLog.objects.filter(action="task.reminded", target_id=str(task.pk)).count() == 1
    before = counts()
    assert run_scan(now=at(0, 14)).reminders == []
    assert counts() == before


def test_reminder_skips_decided_assignees_and_closed_tasks(org, people):
    other = make_user(org, "other@acme-test.test")
    task = task_for(org, people, reminder_at_percent=25, assignees=[people["approver"], other])
    Assignment.objects.filter(task=task, assignee=other).update(decision="approved", decided_at=at(0, 10))
    closed = task_for(org, people, reminder_at_percent=25)
    ApprovalTask.objects.filter(pk=closed.pk).update(status=TaskStatus.APPROVED)
    run_scan(now=at(0, 12))
    assert list(Notification.objects.values_list("recipient_id", flat=True)) == [people["approver"].pk]
    assert not EscalationRecord.objects.filter(task=closed).exists()


# --- escalations ----------------------------------------------------------------------------------
def test_escalation_to_manager_once_per_level_with_repeat_and_max(org, people):
    task = task_for(org, people, escalation_repeat_hours=4, max_escalations=3)
    assert run_scan(now=at(0, 16, 59)).escalations == []

    report = run_scan(now=at(0, 17, 5))
    (item,) = report.escalations
    assert (item.level, item.action) == (1, "notify")
    assert set(item.recipients) == {"boss@acme-test.test", "approver@acme-test.test"}
    # next: 4 business hours after the scan (17:05 is after closing) -> Tuesday 13:00
    assert state(task)[:2] == (1, at(1, 13))
    assert run_scan(now=at(1, 12)).escalations == []  # not yet
    assert run_scan(now=at(0, 17, 30)).escalations == []  # same level is not repeated

    run_scan(now=at(1, 13))
    assert state(task)[:2] == (2, at(1, 17))
    run_scan(now=at(1, 17))
    assert state(task)[:2] == (3, None)  # max reached: no more
    before = counts()
    assert run_scan(now=at(9, 12)).escalations == []
    assert counts() == before

    recs = list(EscalationRecord.objects.filter(task=task).values_list("level", "action", "target__email"))
    assert recs == [(lvl, "notify", "boss@acme-test.test") for lvl in (1, 2, 3)]
    assert AuditLog.objects.filter(action="task.escalated", target_id=str(task.pk)).count() == 3
    esc = Notification.objects.filter(kind="task_escalated")
    assert esc.filter(recipient=people["boss"]).count() == 3
    assert esc.filter(recipient=people["approver"]).count() == 3
    log = AuditLog.objects.filter(action="task.escalated").order_by("sequence").first()
    assert log.actor_id is None and log.changes["escalation_level"] == [0, 1]


def test_escalation_without_repeat_happens_once(org, people):
    task = task_for(org, people, max_escalations=5)  # no repeat interval: one escalation
    run_scan(now=at(0, 18))
    assert state(task)[:2] == (1, None)
    assert run_scan(now=at(5, 18)).escalations == []


def test_escalate_to_role(org, people):
    fin1 = make_user(org, "fin1@acme-test.test", roles=["finance_lead"])
    fin2 = make_user(org, "fin2@acme-test.test", roles=["finance_lead"])
    task = task_for(org, people, escalate_to="role", escalate_to_ref="finance_lead")
    run_scan(now=at(0, 18))
    assert set(Notification.objects.filter(kind="task_escalated").values_list("recipient_id", flat=True)) == {
        fin1.pk,
        fin2.pk,
        people["approver"].pk,
    }
    assert EscalationRecord.objects.get(task=task, level=1).target == fin1


def test_escalate_to_user_by_email_and_by_id(org, people):
    cfo = make_user(org, "cfo@acme-test.test")
    t1 = task_for(org, people, escalate_to="user", escalate_to_ref="CFO@acme-test.test")
    t2 = task_for(org, people, escalate_to="user", escalate_to_ref=str(cfo.pk))
    run_scan(now=at(0, 18))
    assert EscalationRecord.objects.get(task=t1, level=1).target == cfo
    assert EscalationRecord.objects.get(task=t2, level=1).target == cfo


def test_no_target_falls_back_to_org_admins(org, people):
    lonely = make_user(org, "lonely@acme-test.test")  # no manager
    task = task_for(org, people, assignees=[lonely])
    report = run_scan(now=at(0, 18))
    assert "admins" in report.escalations[0].note
    rec = EscalationRecord.objects.get(task=task, level=1)
    assert rec.target == people["admin"] and "note" in rec.details


def test_other_org_calendar_and_tasks_are_independent(org, other_org, people):
    task = task_for(org, people)
    ny = make_org("sla-ny", timezone="America/New_York")
    ny_user = make_user(ny, "x@ny.test")
    ny_task = make_sla_task(ny, assignees=[ny_user], requester=ny_user, activated_at=MON)
    # Monday 09:00 UTC is 04:00 in New York: its 8 business hours end 17:00 EST = 22:00 UTC
    assert ny_task.due_at == at(0, 22)
    run_scan(now=at(0, 18))
    assert state(task)[0] == 1 and state(ny_task)[0] == 0
    n = Notification.objects.get(recipient=people["approver"], kind="task_escalated")
    assert n.organization_id == org.pk


# --- dry run, command, task -----------------------------------------------------------------------
def test_dry_run_changes_nothing(org, people):
    task = task_for(org, people, reminder_at_percent=50, escalation_repeat_hours=4, max_escalations=2)
    before_rows, before_state = counts(), state(task)
    report = run_scan(now=at(0, 18), dry_run=True)
    assert [i.level for i in report.reminders] == [0]
    assert [(i.level, i.action, i.next_escalation_at) for i in report.escalations] == [(1, "notify", at(1, 13))]
    assert counts() == before_rows and state(task) == before_state
    assert any("would do" in line for line in report.lines())


def test_sla_scan_command_dry_run_and_real(org, people, capsys):
    task = task_for(org, people)
    ApprovalTask.objects.filter(pk=task.pk).update(next_escalation_at=dt.datetime(2020, 1, 1, tzinfo=UTC))
    call_command("sla_scan", "--dry-run")
    out = capsys.readouterr().out
    assert "would do: 0 reminder(s), 1 escalation(s)" in out and task.request.reference in out
    assert EscalationRecord.objects.count() == 0
    call_command("sla_scan")
    out = capsys.readouterr().out
    assert "did: 0 reminder(s), 1 escalation(s)" in out
    assert EscalationRecord.objects.filter(task=task, level=1).count() == 1
    call_command("sla_scan")
    assert "did: 0 reminder(s), 0 escalation(s)" in capsys.readouterr().out


def test_celery_task_is_thin_and_retry_safe(org, people):
    task = task_for(org, people, reminder_at_percent=50)
    ApprovalTask.objects.filter(pk=task.pk).update(
        remind_at=dt.datetime(2020, 1, 1, tzinfo=UTC), next_escalation_at=dt.datetime(2020, 1, 2, tzinfo=UTC)
    )
    first = sla_scan.apply().get()
    assert (first["reminders"], first["escalations"]) == (1, 1)
    again = sla_scan.apply().get()  # a retried/duplicated delivery of the task does nothing twice
    assert (again["reminders"], again["escalations"]) == (0, 0)
    assert sorted(EscalationRecord.objects.filter(task=task).values_list("level", flat=True)) == [0, 1]


def test_periodic_registry_and_beat_schedule(db, settings):
    from django_celery_beat.models import PeriodicTask

    from core.periodic import periodic_tasks

    assert periodic_tasks()["sla-scan"] == ("approvals.tasks.sla_scan", settings.SLA_SCAN_INTERVAL_SECONDS)
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")  # idempotent
    pt = PeriodicTask.objects.get(name="sla-scan")
    assert pt.task == "approvals.tasks.sla_scan" and pt.interval.every == settings.SLA_SCAN_INTERVAL_SECONDS


# --- overdue helpers ------------------------------------------------------------------------------
def test_overdue_helpers(org, people):
    late = task_for(org, people)
    on_time = make_sla_task(org, assignees=[people["approver"]], requester=people["requester"], activated_at=at(1, 9))
    now = at(0, 18)
    assert list(ApprovalTask.objects.filter(overdue_task_q(now))) == [late]
    assert is_task_overdue(late, now) and not is_task_overdue(on_time, now)
    flagged = dict(Request.objects.annotate(overdue=overdue_request_exists(now)).values_list("pk", "overdue"))
    assert flagged == {late.request_id: True, on_time.request_id: False}
