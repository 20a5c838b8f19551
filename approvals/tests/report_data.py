"""Seeded report data (no tests here): the same rows on PostgreSQL and, through ``manage.py shell``, SQLite.

Organization in UTC, Mon-Fri 09:00-17:00. Week of Monday 2026-03-02:
- "Purchase": A submitted Mon 09:00, approved Tue 13:00 (12 business hours); B submitted Mon 09:00,
  rejected Mon 11:00 (2 h); C submitted Wed 10:00, still pending, its task past due (breached).
- "Leave": D submitted Thu 09:00, approved Thu 10:00 (1 h) before its deadline.
Expected: Purchase p50 7 h, p90 11 h; Leave p50 = p90 = 1 h; SLA breach Purchase 2/3 (A's task
decided after its 8 h deadline, C open past it), Leave 0/1; approver load: the Purchase approver 1.
"""

import datetime as dt

from approvals.models import ApprovalTask, TaskStatus
from approvals.tests.test_sla_support import make_sla_task
from core.testing import make_org, make_user
from requests.models import Request, RequestStatus

MON = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)


def seed(slug: str = "reports-org"):
    org = make_org(slug, name="Reports Org")
    requester = make_user(org, f"requester@{slug}.test")
    buyer = make_user(org, f"buyer@{slug}.test")
    boss = make_user(org, f"boss@{slug}.test")

    def one(submitted, completed, status, *, approver, step=None):
        task = make_sla_task(org, assignees=[approver], requester=requester, activated_at=submitted, step=step)
        Request.objects.filter(pk=task.request_id).update(
            status=status, submitted_at=submitted, completed_at=completed, created_at=submitted
        )
        task_status = TaskStatus.PENDING if completed is None else TaskStatus.APPROVED
        ApprovalTask.objects.filter(pk=task.pk).update(status=task_status, completed_at=completed, created_at=submitted)
        if completed is not None:
            task.assignments.update(decision="approved", decided_at=completed)
        return task

    a = one(MON, MON + dt.timedelta(days=1, hours=4), RequestStatus.APPROVED, approver=buyer)
    one(MON, MON + dt.timedelta(hours=2), RequestStatus.REJECTED, approver=buyer, step=a.step)
    one(MON + dt.timedelta(days=2, hours=1), None, RequestStatus.PENDING, approver=buyer, step=a.step)
    leave = one(MON + dt.timedelta(days=3), MON + dt.timedelta(days=3, hours=1), RequestStatus.APPROVED, approver=boss)
    a.request.definition.__class__.objects.filter(pk=a.request.definition_id).update(name="Purchase", key="purchase")
    leave.request.definition.__class__.objects.filter(pk=leave.request.definition_id).update(name="Leave", key="leave")
    return org
