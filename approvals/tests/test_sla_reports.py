import datetime as dt

import pytest
from django.urls import include, path

from approvals.models import ApprovalTask, TaskStatus
from approvals.tests.test_sla_support import make_sla_task
from core.testing import api_client, error_code, make_user
from requests.models import Request

# reports/ is mounted by config/api_urls.py; this test mounts it itself so it does not depend on that.
urlpatterns = [path("api/v1/", include("approvals.report_urls")), path("", include("config.urls"))]
pytestmark = pytest.mark.urls(__name__)
URL = "/api/v1/reports/summary/"
MON = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def data(org, other_org, requester):
    approver = make_user(org, "approver@acme-test.test")
    # workflow A: one approved on time (cycle 2h), one rejected late (cycle 30h), one pending overdue
    a1 = make_sla_task(org, assignees=[approver], requester=requester, activated_at=MON)
    wf = a1.request.definition
    a2 = make_sla_task(org, assignees=[approver], requester=requester, activated_at=MON)
    a3 = make_sla_task(org, assignees=[approver], requester=requester, activated_at=MON)
    Request.objects.filter(pk__in=[a2.request_id, a3.request_id]).update(definition=wf)
    ApprovalTask.objects.filter(pk=a1.pk).update(status=TaskStatus.APPROVED, completed_at=MON + dt.timedelta(hours=2))
    ApprovalTask.objects.filter(pk=a2.pk).update(status=TaskStatus.REJECTED, completed_at=MON + dt.timedelta(hours=30))
    Request.objects.filter(pk=a1.request_id).update(status="approved", completed_at=MON + dt.timedelta(hours=2))
    Request.objects.filter(pk=a2.request_id).update(status="rejected", completed_at=MON + dt.timedelta(hours=30))
    # another org's overdue task must not count
    stranger = make_user(other_org, "s@other-test.test")
    make_sla_task(other_org, assignees=[stranger], requester=stranger, activated_at=MON)
    return wf


def test_summary_counts_cycle_times_and_breach_rate(org, data, django_assert_max_num_queries):
    user = make_user(org, "boss@acme-test.test", roles=["auditor"])
    if not user.has_code("reports.view"):
        user = make_user(org, "admin2@acme-test.test", roles=["org_admin"])
    with django_assert_max_num_queries(12):
        resp = api_client(user).get(URL)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["requests"]["total"] == 3
    assert body["requests"]["by_status"]["approved"] == 1 and body["requests"]["by_status"]["pending"] == 1
    (wf,) = body["workflows"]
    assert wf["workflow"]["key"] == data.key
    assert wf["cycle_time_hours"]["completed"] == 2 and wf["cycle_time_hours"]["avg"] == 16.0
    assert wf["cycle_time_hours"]["max"] == 30.0
    assert wf["sla"]["tasks_with_sla"] == 3 and wf["sla"]["breached"] == 2 and wf["sla"]["overdue_now"] == 1
    assert wf["sla"]["breach_rate"] == pytest.approx(0.6667)
    assert body["sla"]["breach_rate"] == pytest.approx(0.6667)


def test_period_filter_and_bad_input(org, data):
    admin = make_user(org, "admin3@acme-test.test", roles=["org_admin"])
    resp = api_client(admin).get(URL, {"since": "2999-01-01"})
    assert resp.status_code == 200 and resp.json()["requests"]["total"] == 0
    resp = api_client(admin).get(URL, {"since": "yesterday"})
    assert resp.status_code == 400 and error_code(resp) and "since" in resp.json()["error"]["details"]


def test_needs_reports_view(org, requester, data):
    resp = api_client(requester).get(URL)
    assert resp.status_code == 403 and error_code(resp)
    assert api_client().get(URL).status_code == 401
