"""The builder in a real browser (issue 20): Playwright for Python driving Debian's chromium.

A designer builds the demo purchase request from an empty workflow with the form designer, the step
editor and the buttons only (no JSON typed), publishes it, and simulates two amounts: the conditional
steps appear and disappear. Each screen is kept under test-artifacts/ (docs/workflows.md shows them).
"""

import json

import pytest

from core.testing import PASSWORD, make_org, make_user
from core.tests.browser import ARTIFACTS, chromium_page, needs_chromium
from workflows.models import WorkflowDefinition
from workflows.tests.factories import make_roles

pytestmark = [pytest.mark.browser, needs_chromium]

FIELDS = [
    # label, type, required, min, help
    ("Amount", "money", True, "0", "Total, taxes included"),
    ("Vendor", "text", True, "1", ""),
    ("Justification", "textarea", False, "", "Why this purchase"),
]
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
        "name": "Legal review",
        "approver_type": "role",
        "approver_ref": "legal_approver",
        "condition": "amount > 5000",
        "position": "1",
    },
    {
        "stage": "3",
        "name": "CFO approval",
        "approver_type": "role",
        "approver_ref": "cfo",
        "condition": "amount > 10000",
    },
]
DETAILS = {"condition", "position"}


def shot(page, name, part=None):
    """The whole page, and ``part`` of it alone (the crop docs/workflows.md shows)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"workflow-builder-{name}-page.png"), full_page=True)
    if part is not None:
        page.locator(part).first.screenshot(path=str(ARTIFACTS / f"workflow-builder-{name}.png"))


def _fill_step(page, index, step):
    if DETAILS & set(step):
        page.locator(f"#steps-{index} details summary").first.click()
    for field, value in step.items():
        selector = f"[name='steps-{index}-{field}']"
        if page.locator(selector).evaluate("el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)


def _simulate(page, amount):
    page.fill("#wf-prev-amount", str(amount))
    page.fill("#wf-prev-vendor", "Paper & Co")
    page.fill("#wf-sim-requester", "rita@acme.example")
    before = page.locator("#wf-sim-output").get_attribute("data-done") or "none"
    page.click("#wf-sim-run")
    page.wait_for_function(
        "before => (document.querySelector('#wf-sim-output').dataset.done || 'none') !== before", arg=before
    )
    rows = page.locator("#wf-sim-output tbody tr")
    return {rows.nth(i).get_attribute("data-step"): rows.nth(i).get_attribute("class") for i in range(rows.count())}


@pytest.fixture
def browser_page():
    with chromium_page("workflow-builder-last") as page:
        yield page


def test_designer_builds_publishes_and_simulates_the_purchase_request(
    transactional_db, live_server, browser_page, monkeypatch
):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    org = make_org("acme-browser", name="Acme Browser")
    make_roles(org)
    make_user(org, "dana@acme.example", roles=["workflow_designer"], is_staff=True)
    manager = make_user(org, "mark@acme.example", first_name="Mark", last_name="Manager")
    make_user(org, "rita@acme.example", roles=["requester"], manager=manager)
    page = browser_page
    page.on("pageerror", lambda exc: pytest.fail(f"script error on the page: {exc}"))

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "dana@acme.example")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")

    # An empty workflow: its draft v1 opens with the designer.
    page.goto(f"{live_server.url}/admin/workflows/workflowdefinition/add/")
    page.fill("#id_key", "purchase-request")
    page.fill("#id_name", "Purchase request")
    page.fill("#id_reference_prefix", "PUR")
    page.click("input[name=_save]")
    page.wait_for_selector("#wf-designer")

    # 1. The form designer: rows, not JSON; the preview follows as you type.
    for i, (label, kind, required, minimum, help_text) in enumerate(FIELDS):
        page.click("#wf-add-field")
        row = page.locator("#wf-fields tbody tr").nth(i)
        row.locator(".wf-f-label").fill(label)
        row.locator(".wf-f-type").select_option(kind)
        if required:
            row.locator(".wf-f-required").check()
        if minimum:
            row.locator(".wf-f-min").fill(minimum)
        if help_text:
            row.locator(".wf-f-help").fill(help_text)
    assert page.locator("#wf-prev-amount").get_attribute("step") == "0.01"
    assert page.locator("#wf-prev-justification").evaluate("el => el.tagName") == "TEXTAREA"
    assert "Total, taxes included" in page.locator("#wf-preview").inner_text()
    # Reordering: Justification up above Vendor and back down again.
    page.locator("#wf-fields tbody tr").nth(2).locator(".wf-up").click()
    assert page.locator("#wf-fields tbody tr").nth(1).locator(".wf-f-key").input_value() == "justification"
    page.locator("#wf-fields tbody tr").nth(1).locator(".wf-down").click()
    page.click("#wf-advanced summary")
    schema = json.loads(page.locator(".wf-schema-raw").input_value())
    assert list(schema["properties"]) == ["amount", "vendor", "justification"]
    assert schema["required"] == ["amount", "vendor"]
    assert schema["properties"]["amount"] == {
        "type": "number",
        "multipleOf": 0.01,
        "x-widget": "money",
        "title": "Amount",
        "description": "Total, taxes included",
        "minimum": 0,
    }
    shot(page, "1-form-designer", ".field-form_schema")

    # 2. The step editor: one line per step, details only where needed.
    for _ in range(len(STEPS) - 1):
        page.click("#steps-group .add-row a")
    for i, step in enumerate(STEPS):
        _fill_step(page, i, step)
    assert not page.locator("#steps-0 .fieldBox.field-quorum_count").is_visible()  # mode any: no quorum
    assert not page.locator("#steps-0 [name='steps-0-approver_ref']").is_visible()  # the manager: no ref
    shot(page, "2-step-editor", "#steps-group")

    # 3. Validate (saves the draft and checks it).
    page.click("input[name=_validate]")
    page.wait_for_selector(".messagelist .success")
    assert "ready to publish" in page.locator(".messagelist").inner_text()
    definition = WorkflowDefinition.objects.get(key="purchase-request")
    draft = definition.versions.get()
    assert draft.steps.count() == 4 and draft.form_schema["required"] == ["amount", "vendor"]

    # A bad condition is refused on its field, with the column, and opens the details.
    page.locator("#steps-3 details summary").first.click()
    page.fill("[name='steps-3-condition']", "amount >")
    page.click("input[name=_validate]")
    page.wait_for_selector(".errornote")
    assert "column" in page.locator("#steps-3 .errorlist").first.inner_text()
    page.fill("[name='steps-3-condition']", "amount > 10000")
    shot(page, "3-condition-error", "#steps-3")

    # 4. Publish: the confirmation lists what changes.
    page.click("input[name=_publish]")
    page.wait_for_selector("#wf-diff")
    diff = page.locator("#wf-diff").inner_text()
    assert "step added" in diff and "CFO approval" in diff and "form field added" in diff and "amount" in diff
    shot(page, "4-publish-confirmation", "#content")
    page.click("#wf-confirm-publish")
    page.wait_for_selector(".messagelist .success")
    draft.refresh_from_db()
    assert draft.status == "published"

    # 5. The diagram: reject paths, end states, people behind roles, conditions on edges.
    diagram = page.locator("#wf-route")
    text = diagram.text_content()
    for expected in ("Submitted", "Approved", "Rejected", "if amount > 5000", "if amount > 10000", "(2)"):
        assert expected in text, expected
    assert page.locator("#wf-route a.wf-step-link").count() == 4
    shot(page, "5-published-diagram", ".field-route_diagram")

    # 6. Simulate two amounts: Legal and CFO appear only above their thresholds.
    small = _simulate(page, 1200)
    assert small["Legal review"] == "wf-sim-skipped" and small["CFO approval"] == "wf-sim-skipped"
    assert small["Manager approval"] == "wf-sim-active" and small["Finance review"] == "wf-sim-active"
    assert "Mark Manager" in page.locator("#wf-sim-output").inner_text()
    shot(page, "6-simulate-small", "#wf-simulate")
    large = _simulate(page, 25000)
    assert all(state == "wf-sim-active" for state in large.values()), large
    shot(page, "7-simulate-large", "#wf-simulate")

    # 7. A new draft from the published version, one click.
    page.click("#wf-new-draft")
    page.wait_for_selector("#wf-designer")
    assert definition.versions.count() == 2
    assert page.locator("#wf-fields tbody tr").count() == 3
    shot(page, "8-new-draft")


@pytest.fixture
def roundtrip_page():
    with chromium_page("workflow-builder-roundtrip-last") as page:
        yield page


def test_designer_and_raw_schema_round_trip_keeping_unknown_keywords(
    transactional_db, live_server, roundtrip_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from workflows import services

    org = make_org("acme-roundtrip", name="Acme Round Trip")
    dana = make_user(org, "dana@acme.example", roles=["workflow_designer"], is_staff=True)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "$defs": {"code": {"type": "string", "maxLength": 8}},
        "properties": {
            "vendor": {"type": "string", "title": "Vendor", "pattern": "^[A-Za-z ]+$", "x-custom": 1},
            "units": {"type": "integer", "minimum": 1},
        },
        "required": ["vendor"],
        "x-field-order": ["vendor", "units"],
    }
    definition = services.workflow_create(
        actor=dana, organization=org, key="roundtrip", name="Round trip", form_schema=schema, steps=[]
    )
    draft = definition.versions.get()
    page = roundtrip_page
    page.on("pageerror", lambda exc: pytest.fail(f"script error on the page: {exc}"))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "dana@acme.example")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/workflows/workflowversion/{draft.pk}/change/")
    page.wait_for_selector("#wf-designer")

    rows = page.locator("#wf-fields tbody tr")
    assert rows.count() == 2 and rows.nth(1).locator(".wf-f-type").input_value() == "number"
    rows.nth(0).locator(".wf-f-label").fill("Supplier")  # the designer rewrites the schema...
    page.click("#wf-advanced summary")
    written = json.loads(page.locator(".wf-schema-raw").input_value())
    # ... and keeps what it does not manage, at the top and on the field; integers stay integers.
    assert written["additionalProperties"] is False and written["$defs"] == schema["$defs"]
    assert written["properties"]["vendor"] == {**schema["properties"]["vendor"], "title": "Supplier"}
    assert written["properties"]["units"] == {"type": "integer", "minimum": 1}

    # The raw view goes back to the rows when the box is left.
    written["properties"]["cost_center"] = {"type": "string", "enum": ["A1", "B2"], "title": "Cost center"}
    page.fill(".wf-schema-raw", json.dumps(written, indent=2))
    page.click("#wf-preview h3")
    assert rows.count() == 3 and rows.nth(2).locator(".wf-f-type").input_value() == "choice"
    assert rows.nth(2).locator(".wf-f-options").input_value() == "A1, B2"
    assert page.locator("#wf-prev-cost_center option").count() == 3
    # Broken JSON in the raw view is reported; the rows keep the last good schema.
    page.fill(".wf-schema-raw", "{not json")
    page.click("#wf-preview h3")
    assert page.locator("#wf-raw-error").is_visible() and rows.count() == 3
    rows.nth(2).locator(".wf-f-help").fill("Who pays")  # back to rows: the schema is written again

    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    draft.refresh_from_db()
    stored = draft.form_schema
    assert stored["$defs"] == schema["$defs"] and stored["additionalProperties"] is False
    assert stored["properties"]["vendor"]["pattern"] == "^[A-Za-z ]+$"
    assert stored["properties"]["cost_center"]["description"] == "Who pays"
    assert stored["x-field-order"] == ["vendor", "units", "cost_center"]  # jsonb keeps no key order
    assert page.locator(".wf-schema-raw").input_value().startswith('{\n  "type"')  # kept indented
