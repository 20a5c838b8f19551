"""The admin Reports page in a real browser (Debian's chromium through Playwright): charts drawn from seeded data."""

import pytest

from approvals.tests.report_data import seed
from core.testing import PASSWORD, make_user
from core.tests.browser import ARTIFACTS, chromium_page, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]


def test_reports_page_shows_the_charts(transactional_db, live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop in this thread
    org = seed()
    make_user(org, "auditor@reports-org.test", roles=["auditor"], is_staff=True)
    with chromium_page("admin-reports") as page:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "auditor@reports-org.test")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#reports-module")
        page.click("#reports-module a")
        page.fill("#id_since", "2026-03-02")
        page.fill("#id_until", "2026-03-09")
        page.click("#report-filters input[type=submit]")
        page.wait_for_selector("#report-throughput svg rect")
        charts = page.locator("svg.report-chart")
        assert charts.count() == 5
        for index in range(5):
            box = charts.nth(index).bounding_box()
            assert box and box["width"] > 300 and box["height"] >= 80
        assert page.locator("#report-throughput svg rect").count() >= 14  # 7 days x 2 series
        assert "Purchase" in page.locator("#report-cycle_time svg").inner_html()
        assert "67%" in page.locator("#report-sla_by_workflow svg").text_content()
        page.select_option("#id_workflow", "leave")
        page.click("#report-filters input[type=submit]")
        page.wait_for_selector("#report-cycle_time svg")
        assert "Purchase" not in page.locator("#report-cycle_time svg").inner_html()
        page.goto(f"{live_server.url}/admin/reports/?since=2026-03-02&until=2026-03-09")
        page.wait_for_selector("#report-throughput svg rect")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-reports-charts.png"), full_page=True)
