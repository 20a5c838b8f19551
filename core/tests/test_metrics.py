"""/metrics: access rules, HTTP, domain and database metrics, parsed with prometheus_client.parser."""

import datetime as dt

import pytest
from django.test import Client

from approvals.models import ApprovalTask
from approvals.sla_scan import run_scan
from approvals.tests.test_sla_support import make_sla_task
from auditlogs.models import AuditChainHead
from auditlogs.verify import verify_chain
from core import metrics_db
from core.testing import api_client, make_user
from core.tests.metrics_support import parse, total, value
from requests.models import Request

pytestmark = pytest.mark.django_db

MON = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fresh_database_gauges(settings):
    settings.METRICS_TOKEN = ""
    metrics_db.forget()
    yield
    metrics_db.forget()


def scrape(**extra) -> dict:
    metrics_db.forget()
    response = Client().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def test_loopback_only_without_a_token(settings):
    assert Client().get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    refused = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    # a proxy on this machine relays outside clients from loopback: refused too
    assert Client().get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_bearer_token_when_configured(settings):
    settings.METRICS_TOKEN = "scrape-secret-1234"
    assert Client().get("/metrics").status_code == 403  # loopback is not enough any more
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = Client(REMOTE_ADDR="10.1.2.3").get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-1234")
    assert ok.status_code == 200 and b"http_requests_total" in ok.content


def test_http_requests_by_route_template_method_and_status(org, requester):
    before = scrape()
    client = api_client(requester)
    for _ in range(3):
        assert client.get("/api/v1/requests/").status_code == 200
    missing = "/api/v1/requests/00000000-0000-0000-0000-000000000000/"
    assert client.get(missing).status_code == 404
    assert Client().get("/no/such/page/").status_code == 404
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("http_requests_total", route="/api/v1/requests/", method="GET", status="200") == 3
    # the template, not the path: one series whatever the id
    assert delta("http_requests_total", route="/api/v1/requests/{pk}/", method="GET", status="404") == 1
    assert delta("http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert delta("http_request_duration_seconds_count", route="/api/v1/requests/", method="GET") == 3
    assert not any(n == "http_requests_total" and ("route", missing) in ls for n, ls in after)


def test_decisions_breaches_and_request_gauges(org, requester, django_capture_on_commit_callbacks):
    approver = make_user(org, "approver@acme-test.test", roles=["requester"])
    late = make_sla_task(org, assignees=[approver], requester=requester, activated_at=MON)  # due MON 17:00
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(approver).post(f"/api/v1/tasks/{late.pk}/approve/", {"comment": "ok"})
    assert response.status_code == 200, response.json()
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("approval_decisions_total", outcome="approved") == 1
    assert delta("approval_decisions_total", outcome="rejected") == 0
    assert delta("sla_breaches_total") == 1
    assert delta("sla_tasks_completed_total", breached="true") == 1
    assert delta("audit_events_total", action="task.approved") == 1
    for state in ("pending", "approved", "draft"):
        assert value(after, "requests", state=state) == Request.objects.filter(status=state).count()
    assert value(after, "requests", state="approved") >= 1


def test_nothing_counted_for_a_rolled_back_change(org, requester, django_capture_on_commit_callbacks):
    approver = make_user(org, "approver@acme-test.test", roles=["requester"])
    task = make_sla_task(org, assignees=[approver], requester=requester, activated_at=MON)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        denied = api_client(requester).post(f"/api/v1/tasks/{task.pk}/approve/", {"comment": "mine"})
    assert denied.status_code in (403, 404)
    assert value(scrape(), "approval_decisions_total", outcome="approved") == value(
        before, "approval_decisions_total", outcome="approved"
    )


def test_sla_reminders_escalations_and_overdue_gauge(org, requester, django_capture_on_commit_callbacks):
    boss = make_user(org, "boss@acme-test.test")
    approver = make_user(org, "approver@acme-test.test", manager=boss)
    make_sla_task(org, assignees=[approver], requester=requester, activated_at=MON, reminder_at_percent=50)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        run_scan(now=MON + dt.timedelta(hours=4))  # 50 %: the reminder
    with django_capture_on_commit_callbacks(execute=True):
        run_scan(now=MON + dt.timedelta(hours=9))  # past due: the escalation
    after = scrape()
    assert value(after, "sla_reminders_total") - value(before, "sla_reminders_total") == 1
    assert value(after, "sla_escalations_total") - value(before, "sla_escalations_total") == 1
    assert value(after, "sla_overdue_tasks") == ApprovalTask.objects.filter(status="pending").count() == 1


def test_audit_chain_length_per_organization_and_verify_results(org, other_org, requester):
    make_sla_task(org, assignees=[requester], requester=requester, activated_at=MON)
    api_client(requester).post("/api/v1/requests/", {"workflow": "nope", "title": "x"})  # no audit: refused
    head = AuditChainHead.objects.filter(chain=str(org.pk)).values_list("sequence", flat=True).first() or 0
    before = scrape()
    assert value(before, "audit_chain_length", organization=org.slug) == head
    verify_chain(organization=org)
    after = scrape()
    assert value(after, "audit_verify_total", result="ok") - value(before, "audit_verify_total", result="ok") == 1
    assert total(after, "audit_verify_total", result="broken") == total(before, "audit_verify_total", result="broken")


def test_email_backlog_gauges(org, requester):
    from notifications.models import EmailDelivery, Kind
    from notifications.services import notify

    notify(recipient=requester, kind=Kind.TASK_ASSIGNED, title="Approve")  # its e-mail waits for the commit
    pending = EmailDelivery.objects.filter(status="pending").count()
    assert pending == 1
    samples = scrape()
    assert value(samples, "email_deliveries", status="pending") == pending
    assert value(samples, "email_deliveries", status="failed") == 0
    assert (value(samples, "email_backlog_oldest_seconds") > 0) == (pending > 0)


def test_alert_rules_and_dashboard_use_only_exported_metrics():
    import json
    import re
    from pathlib import Path

    import yaml
    from prometheus_client.parser import text_string_to_metric_families

    metrics_db.forget()
    families = {f.name: f.type for f in text_string_to_metric_families(Client().get("/metrics").content.decode())}
    known = set(families)
    for name, kind in families.items():
        known |= {f"{name}_total"} if kind == "counter" else set()
        known |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"} if kind == "histogram" else set()
    docs = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    rules = yaml.safe_load((docs / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    functions = {"histogram_quantile", "clamp_min"}
    used = {word for expr in exprs for word in re.findall(r"\b[a-z][a-z0-9_]*_[a-z0-9_]*\b", expr)} - functions
    assert used and used <= known, used - known
    assert {"http_requests_total", "approval_decisions_total", "sla_breaches_total", "audit_chain_length"} <= used


def test_every_apps_database_gauges_are_found_and_read(org, requester):
    """Each app declares its gauges in <app>/gauges.py; core finds them without importing an app."""
    from webhooks.models import WebhookEndpoint

    WebhookEndpoint.objects.create(organization=org, url="https://hooks.example/in", is_active=False)
    samples = scrape()
    names = {name for name, _ in samples}
    assert {
        "requests",
        "sla_overdue_tasks",
        "email_deliveries",
        "email_backlog_oldest_seconds",
        "audit_chain_length",
        "webhook_deliveries",
        "webhook_backlog_oldest_seconds",
        "webhook_endpoints",
    } <= names
    assert (
        value(samples, "webhook_endpoints", state="disabled") == WebhookEndpoint.objects.filter(is_active=False).count()
    )
    assert value(samples, "requests", state="draft") == Request.objects.filter(status="draft").count()
