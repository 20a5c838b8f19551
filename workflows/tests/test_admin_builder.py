"""The builder's server side (issue 20): publish confirmation with the diff, new draft, Validate, SVG export."""

import pytest
from django.test import Client
from django.urls import reverse

from auditlogs.models import AuditLog
from core.testing import PASSWORD, make_user
from requests.models import Request
from workflows import services
from workflows.diagram import route_svg
from workflows.models import Step
from workflows.tests.factories import make_workflow
from workflows.version_diff import diff_versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def dana(org):
    return make_user(org, "dana@acme-test.test", roles=["workflow_designer"], is_staff=True)


@pytest.fixture
def designer(dana):
    client = Client()
    assert client.login(email=dana.email, password=PASSWORD)
    return client


def _url(name, version):
    return reverse(f"admin:workflows_workflowversion_{name}", args=[version.pk])


def _second_draft(org, dana):
    definition = make_workflow(org, actor=dana)
    v1 = definition.versions.get()
    draft = services.draft_from_version(actor=dana, version=v1)
    content = services.version_as_dict(draft)
    steps = [s for s in content["steps"] if s["name"] != "CFO approval"]
    steps[0]["sla_hours"] = 4
    steps.append({**steps[1], "name": "Procurement", "stage": 3, "approver_ref": "cfo", "condition": ""})
    schema = {**content["form_schema"], "properties": {**content["form_schema"]["properties"]}}
    schema["properties"]["cost_center"] = {"type": "string"}
    del schema["properties"]["justification"]
    schema["properties"]["vendor"] = {**schema["properties"]["vendor"], "title": "Supplier"}
    services.draft_save(
        actor=dana, definition=definition, version=draft, form_schema=schema, distinct_approvers=True, steps=steps
    )
    draft.refresh_from_db()
    return v1, draft


def test_diff_names_steps_and_fields_added_removed_changed(org, dana):
    v1, draft = _second_draft(org, dana)
    diff = diff_versions(current=services.version_as_dict(v1), draft=services.version_as_dict(draft))
    assert diff.steps_added == ["Procurement"] and diff.steps_removed == ["CFO approval"]
    assert [(c.name, c.details) for c in diff.steps_changed] == [("Manager approval", ["sla_hours: 8 → 4"])]
    assert diff.fields_added == ["cost_center"] and diff.fields_removed == ["justification"]
    assert [(c.name, c.details) for c in diff.fields_changed] == [("vendor", ["title: Vendor → Supplier"])]
    assert diff.other == ["distinct approvers: False → True"]


def test_publish_page_shows_the_diff_and_running_requests_then_publishes(org, dana, designer, requester):
    v1, draft = _second_draft(org, dana)
    Request.objects.create(
        organization=org,
        definition=v1.definition,
        workflow_version=v1,
        requester=requester,
        status="pending",
        title="Paper",
        reference="PUR-1",
    )
    page = designer.get(_url("publish", draft))
    html = page.content.decode()
    assert page.status_code == 200
    assert "1 running request" in html and "stays on v1" in html
    assert "Procurement" in html and "CFO approval" in html and "cost_center" in html
    assert "sla_hours: 8 → 4" in html
    assert draft.status == "draft"  # looking changes nothing

    response = designer.post(_url("publish", draft))
    assert response.status_code == 302 and response["Location"] == _url("change", draft)
    draft.refresh_from_db()
    v1.refresh_from_db()
    assert (draft.status, v1.status) == ("published", "retired")
    assert AuditLog.objects.filter(action="workflow.published").count() == 2


def test_publish_page_lists_problems_and_offers_no_button(org, dana, designer):
    _v1, draft = _second_draft(org, dana)
    Step.objects.filter(version=draft).update(approver_ref="ghosts", approver_type="role")
    html = designer.get(_url("publish", draft)).content.decode()
    assert "Not ready to publish" in html and "no role with slug &#x27;ghosts&#x27;" in html
    assert 'id="wf-confirm-publish"' not in html


def test_publishing_a_published_version_is_refused(org, dana, designer):
    v1 = make_workflow(org, actor=dana).versions.get()
    assert designer.get(_url("publish", v1)).status_code == 403
    assert designer.post(_url("publish", v1)).status_code == 403


def test_validate_button_saves_and_reports(org, dana, designer):
    from workflows.tests.test_admin import _post_data

    draft = make_workflow(org, actor=dana, publish=False).versions.get()
    data = _post_data(draft, services.version_as_dict(draft)["steps"])
    data.pop("_continue")
    data["_validate"] = "1"
    response = designer.post(_url("change", draft), data, follow=True)
    assert "Valid: 4 step(s), 3 form field(s); ready to publish." in response.content.decode()


def test_new_draft_button_copies_the_version(org, dana, designer):
    v1 = make_workflow(org, actor=dana).versions.get()
    page = designer.get(_url("change", v1)).content.decode()
    assert 'id="wf-new-draft"' in page
    response = designer.post(_url("new_draft", v1))
    v2 = v1.definition.versions.get(number=2)
    assert response.status_code == 302 and response["Location"] == _url("change", v2)
    assert v2.steps.count() == 4
    again = designer.post(_url("new_draft", v1), follow=True)
    assert "already the draft" in again.content.decode()
    assert v1.definition.versions.count() == 2


def test_svg_export_is_the_diagram_with_every_path(org, dana, designer):
    v1 = make_workflow(org, actor=dana, publish=False).versions.get()
    Step.objects.filter(version=v1, name="Finance review").update(
        on_reject="return_to_requester", escalate_to="role", escalate_to_ref="cfo", on_breach="reassign"
    )
    response = designer.get(_url("diagram", v1))
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Disposition"] == 'attachment; filename="purchase-request-v1.svg"'
    svg = response.content.decode()
    assert (
        svg.startswith("<svg")
        and "<script" not in svg
        and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    for text in ("Submitted", "Approved", "Rejected", "Back to requester", "if amount &gt; 5000"):
        assert text in svg, text
    assert "escalates to role cfo (1)" in svg and "on breach: reassign" in svg
    assert "(2)" in svg  # the two finance approvers behind the role


def test_diagram_escapes_what_designers_type(org, dana):
    v1 = make_workflow(org, actor=dana, publish=False).versions.get()
    Step.objects.filter(version=v1, name="Finance review").update(name="<script>alert(1)</script>")
    svg = route_svg(v1)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_builder_pages_are_scoped_to_the_organization(org, other_org, dana, designer):
    theirs = make_workflow(other_org).versions.get()
    for name in ("publish", "diagram", "new_draft"):
        assert designer.get(_url(name, theirs)).status_code == 404
    assert designer.post(_url("new_draft", theirs)).status_code == 404
    assert theirs.definition.versions.count() == 1


def test_view_only_version_shows_the_schema_indented(org, dana, designer):
    v1 = make_workflow(org, actor=dana).versions.get()
    html = designer.get(_url("change", v1)).content.decode()
    assert '<pre class="wf-schema-view">{\n  &quot;' in html
    assert 'id="wf-sim-run"' in html and 'id="wf-builder"' in html


def test_the_builder_loads_nothing_from_outside():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [
        root / "static/workflows/builder.js",
        root / "static/workflows/builder.css",
        *root.glob("templates/**/*.html"),
    ]
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        for marker in ("http://", "https://", "//cdn", "@import", "url("):
            assert marker not in text, f"{path.name} has {marker}"


def _with_extra_steps(org, dana, extra: int):
    definition = make_workflow(org, actor=dana, publish=False, key=f"wide-{extra}")
    draft = definition.versions.get()
    content = services.version_as_dict(draft)
    steps = content["steps"] + [
        {**content["steps"][1], "name": f"Extra {i}", "stage": 4 + i, "approver_ref": "legal_approver"}
        for i in range(extra)
    ]
    services.draft_save(
        actor=dana,
        definition=definition,
        version=draft,
        form_schema=content["form_schema"],
        distinct_approvers=False,
        steps=steps,
    )
    return draft


def test_builder_pages_cost_the_same_queries_for_any_number_of_steps(org, dana, designer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small, large = _with_extra_steps(org, dana, 0), _with_extra_steps(org, dana, 6)
    designer.get(_url("change", small))  # warm the session's caches (roles, permission codes)
    counts = {}
    for version in (small, large):
        for name in ("change", "diagram", "publish"):
            with CaptureQueriesContext(connection) as ctx:
                assert designer.get(_url(name, version)).status_code == 200
            counts[(name, version.steps.count())] = len(ctx)
    for name in ("change", "diagram", "publish"):
        assert counts[(name, 4)] == counts[(name, 10)], counts
