"""Report time series and tables (approvals/report_series.py), reports/series/, the admin page and its CSVs."""

import csv
import datetime as dt
import io
import json

import pytest
from django.test import Client

from approvals.report_series import Period, percentile, report
from approvals.tests.report_data import MON, NOW, seed
from core.testing import api_client, make_user
from core.tests.servers import embedded_database, manage

pytestmark = pytest.mark.django_db

WEEK = Period(since=MON.date(), until=MON.date() + dt.timedelta(days=7), bucket="day")


def expected_shape(data: dict) -> None:
    throughput = {str(row["bucket"]): (row["submitted"], row["decided"]) for row in data["throughput"]}
    assert throughput["2026-03-02"] == (2, 1)  # A and B submitted; B decided Monday
    assert throughput["2026-03-03"] == (0, 1)  # A decided Tuesday
    assert throughput["2026-03-04"] == (1, 0)
    assert throughput["2026-03-05"] == (1, 1)
    assert len(throughput) == 7 and throughput["2026-03-08"] == (0, 0)
    cycle = {row["workflow"]: (row["decided"], row["p50_hours"], row["p90_hours"]) for row in data["cycle_time"]}
    assert cycle == {"purchase": (2, 7.0, 11.0), "leave": (1, 1.0, 1.0)}
    sla = {
        row["workflow"]: (row["tasks_with_sla"], row["breached"], row["breach_rate"]) for row in data["sla_by_workflow"]
    }
    assert sla == {"purchase": (3, 2, 0.6667), "leave": (1, 0, 0.0)}
    assert [(r["workflow"], r["step"], r["breached"]) for r in data["sla_by_step"]] == [
        ("leave", "Manager approval", 0),
        ("purchase", "Manager approval", 2),
    ]
    assert data["approver_load"] == [{"approver": "buyer@reports-org.test", "pending": 1}]


def test_percentile_matches_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([2, 12], 0.5) == 7 and percentile([2, 12], 0.9) == 11
    assert percentile([5], 0.9) == 5


def test_series_on_postgresql():
    org = seed()
    data = report(organization=org, period=WEEK, now=NOW)
    expected_shape(data)
    weekly = report(organization=org, period=Period(since=WEEK.since, until=WEEK.until, bucket="week"), now=NOW)
    assert [(str(r["bucket"]), r["submitted"], r["decided"]) for r in weekly["throughput"]] == [("2026-03-02", 4, 3)]


def test_series_on_sqlite_give_the_same_figures(tmp_path):
    env = embedded_database(tmp_path, seeded=False)
    code = (
        "import json, datetime as dt; from approvals.tests.report_data import seed, MON, NOW; "
        "from approvals.report_series import Period, report; org = seed(); "
        "p = Period(since=MON.date(), until=MON.date() + dt.timedelta(days=7), bucket='day'); "
        "print(json.dumps(report(organization=org, period=p, now=NOW), default=str)); "
        "from approvals.reports import summary; "
        "print(json.dumps(summary(organization=org, now=NOW), default=str))"
    )
    out = manage(env, "shell", "-c", code)
    series, totals = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    expected_shape(series)
    # reports/summary/: p50/p90 (wall-clock hours) on SQLite too, equal to PostgreSQL's percentile_cont
    assert summary_percentiles(totals) == {"Purchase": (15.0, 25.4), "Leave": (1.0, 1.0)}


def summary_percentiles(data: dict) -> dict:
    return {
        w["workflow"]["name"]: (w["cycle_time_hours"]["p50"], w["cycle_time_hours"]["p90"]) for w in data["workflows"]
    }


def test_summary_percentiles_on_postgresql():
    from approvals.reports import summary

    org = seed()
    assert summary_percentiles(summary(organization=org, now=NOW)) == {"Purchase": (15.0, 25.4), "Leave": (1.0, 1.0)}


def test_api_series_filters_and_refusals(django_assert_max_num_queries):
    org = seed()
    auditor = make_user(org, "auditor@reports-org.test", roles=["auditor"])
    client = api_client(auditor)
    with django_assert_max_num_queries(12):
        response = client.get("/api/v1/reports/series/", {"since": "2026-03-02", "until": "2026-03-09"})
    assert response.status_code == 200, response.json()
    assert {r["workflow"] for r in response.json()["cycle_time"]} == {"purchase", "leave"}
    only = client.get("/api/v1/reports/series/", {"since": "2026-03-02", "until": "2026-03-09", "workflow": "leave"})
    assert [r["workflow"] for r in only.json()["cycle_time"]] == ["leave"]
    for bad in ({"workflow": "nope"}, {"bucket": "year"}, {"since": "2026-03-09", "until": "2026-03-02"},
                {"since": "2024-01-01", "until": "2026-01-01"}, {"since": "yesterday"}):  # fmt: skip
        refused = client.get("/api/v1/reports/series/", bad)
        assert refused.status_code == 400, (bad, refused.json())
        assert refused.json()["error"]["code"] == "validation_error"
    requester = make_user(org, "plain@reports-org.test", roles=["requester"])
    assert api_client(requester).get("/api/v1/reports/series/").status_code == 403


def staff_client(org, roles):
    user = make_user(org, f"{roles[0]}-staff@reports-org.test", roles=roles, is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def test_admin_reports_page_charts_and_csv():
    org = seed()
    client = staff_client(org, ["auditor"])
    index = client.get("/admin/")
    assert b'href="/admin/reports/"' in index.content
    page = client.get("/admin/reports/", {"since": "2026-03-02", "until": "2026-03-09"})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="report-chart"') == 5
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no external asset
    assert "Purchase" in html and "buyer@reports-org.test" in html
    response = client.get("/admin/reports/", {"since": "2026-03-02", "until": "2026-03-09", "csv": "cycle_time"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {(r["workflow"], r["p50_hours"], r["p90_hours"]) for r in rows} == {
        ("purchase", "7.0", "11.0"),
        ("leave", "1.0", "1.0"),
    }
    bad = client.get("/admin/reports/", {"since": "nonsense"})
    assert bad.status_code == 200 and "errornote" in bad.content.decode()


def test_admin_reports_page_refuses_staff_without_reports_view():
    org = seed()
    client = staff_client(org, ["requester"])
    assert client.get("/admin/reports/").status_code == 403
    assert b'href="/admin/reports/"' not in client.get("/admin/").content
