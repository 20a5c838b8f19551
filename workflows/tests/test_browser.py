"""The builder in a real browser: Playwright for Python driving Debian's chromium (no browser download)."""

import json

import pytest

from core.testing import PASSWORD, make_user
from core.tests.browser import ARTIFACTS, chromium_page, needs_chromium
from workflows.models import WorkflowDefinition
from workflows.tests.factories import make_roles

pytestmark = [pytest.mark.browser, needs_chromium]

SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "number"}, "vendor": {"type": "string"}},
    "required": ["amount", "vendor"],
}
STEPS = [
    {"stage": "1", "name": "Manager approval", "approver_type": "requester_manager", "sla_hours": "8"},
    {
        "stage": "2",
        "name": "Finance review",
        "approver_type": "role",
        "approver_ref": "finance_approver",
        "mode": "all",
        "sla_hours": "16",
    },
    {
        "stage": "2",
        "position": "1",
        "name": "Legal review",
        "approver_type": "role",
        "approver_ref": "legal_approver",
        "condition": "amount > 5000",
    },
]


@pytest.fixture
def browser_page():
    with chromium_page("workflow-builder-last") as page:
        yield page


def _fill_step(page, index, step):
    for field, value in step.items():
        selector = f"[name='steps-{index}-{field}']"
        if page.locator(selector).evaluate("el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)


def test_designer_builds_publishes_and_sees_the_diagram(transactional_db, live_server, browser_page, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from core.testing import make_org

    org = make_org("acme-browser", name="Acme Browser")
    make_roles(org)
    make_user(org, "dana@acme.example", roles=["workflow_designer"], is_staff=True)
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "dana@acme.example")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")

    page.goto(f"{live_server.url}/admin/workflows/workflowdefinition/add/")
    page.fill("#id_key", "purchase-browser")
    page.fill("#id_name", "Purchase (browser)")
    page.click("input[name=_save]")
    page.wait_for_selector("#id_form_schema")  # redirected to draft v1

    page.fill("#id_form_schema", json.dumps(SCHEMA))
    # Two extra rows are shown; add one more for the third step.
    page.click(".add-row a")
    for i, step in enumerate(STEPS):
        _fill_step(page, i, step)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator(".errornote").count() == 0

    # A bad condition is rejected inline, with its position.
    page.fill("[name='steps-2-condition']", "amount >")
    page.click("input[name=_continue]")
    page.wait_for_selector(".errornote")
    assert "column" in page.locator(".errorlist").first.inner_text()
    page.fill("[name='steps-2-condition']", "amount > 5000")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    page.goto(f"{live_server.url}/admin/workflows/workflowversion/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "publish_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert "Published" in page.locator(".messagelist").inner_text()

    version = WorkflowDefinition.objects.get(key="purchase-browser").versions.get()
    page.goto(f"{live_server.url}/admin/workflows/workflowversion/{version.pk}/change/")
    diagram = page.wait_for_selector("#wf-route")
    text = diagram.text_content()
    assert "Stage 1" in text and "Stage 2" in text and "parallel" in text
    assert "if amount > 5000" in text and "SLA 8h" in text and "mode: all" in text
    assert page.locator("#wf-route .wf-stage").count() == 2
    assert page.locator("#wf-route .wf-stage[data-stage='2'] .wf-step").count() == 2
    assert page.locator("input[name=_save]").count() == 0  # published: read-only

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workflow-builder-diagram.png"), full_page=True)

    definition = WorkflowDefinition.objects.get(key="purchase-browser")
    assert list(definition.versions.values_list("status", flat=True)) == ["published"]
    assert definition.versions.get().steps.count() == 3
