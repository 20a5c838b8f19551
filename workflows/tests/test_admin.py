import pytest
from django.test import Client
from django.urls import reverse

from auditlogs.models import AuditLog
from core.testing import PASSWORD, make_user
from requests.models import Request
from workflows import services
from workflows.models import Step, WorkflowDefinition, WorkflowVersion
from workflows.tests.factories import make_roles, make_workflow, second_draft
from workflows.validation import STEP_FIELDS

# The admin form posts every step field but the checkbox (absent from a POST when unticked).
STEP_FIELDS_POST = [f for f in STEP_FIELDS if f != "allow_self_approval"]


@pytest.fixture
def dana(org):
    return make_user(org, "dana@acme-test.test", roles=["workflow_designer"], is_staff=True)


@pytest.fixture
def admin_client(dana):
    client = Client()
    assert client.login(email=dana.email, password=PASSWORD)
    return client


def _version_url(version):
    return reverse("admin:workflows_workflowversion_change", args=[version.pk])


def _post_data(version, steps, form_schema=None):
    import json

    data = {
        "form_schema": json.dumps(form_schema if form_schema is not None else version.form_schema),
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "_continue": "1",
    }
    for i, step in enumerate(steps):
        row = {
            "position": 0,
            "max_escalations": 1,
            "on_breach": "notify",
            "on_reject": "reject_request",
            "mode": "any",
            **step,
        }
        for field in STEP_FIELDS_POST:
            data[f"steps-{i}-{field}"] = "" if row.get(field) is None else str(row.get(field, ""))
    return data


def _fresh_draft(org, dana, admin_client):
    make_roles(org)
    response = admin_client.post(
        reverse("admin:workflows_workflowdefinition_add"),
        {
            "key": "it-access",
            "name": "IT access",
            "description": "",
            "category": "IT",
            "is_active": "on",
            "reference_prefix": "ITA",
        },
    )
    definition = WorkflowDefinition.objects.get(key="it-access")
    draft = definition.versions.get()
    assert response.status_code == 302 and response["Location"] == _version_url(draft)
    return draft


SCHEMA = {"type": "object", "properties": {"amount": {"type": "number"}, "system": {"type": "string"}}}


def test_build_in_admin_publish_and_see_diagram(org, dana, admin_client):
    draft = _fresh_draft(org, dana, admin_client)
    steps = [
        {"stage": 1, "name": "Manager", "approver_type": "requester_manager", "sla_hours": 8},
        {"stage": 2, "name": "Finance", "approver_type": "role", "approver_ref": "finance_approver", "mode": "all"},
        {
            "stage": 2,
            "name": "Legal",
            "approver_type": "role",
            "approver_ref": "legal_approver",
            "condition": "amount > 5000",
            "position": 1,
        },
    ]
    response = admin_client.post(_version_url(draft), _post_data(draft, steps, SCHEMA))
    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    assert draft.steps.count() == 3
    assert AuditLog.objects.filter(action="workflow.updated", target_id=str(draft.definition_id)).exists()

    changelist = reverse("admin:workflows_workflowversion_changelist")
    response = admin_client.post(changelist, {"action": "publish_selected", "_selected_action": [draft.pk]})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "published"

    page = admin_client.get(_version_url(draft)).content.decode()
    assert 'id="wf-route"' in page and "if amount &gt; 5000" in page and "SLA 8 business hours" in page
    assert page.count('class="stagebg"') == 2


@pytest.mark.parametrize(
    ("step", "field", "fragment"),
    [
        ({"condition": "amount >"}, "condition", "column"),
        ({"condition": "colour == 1"}, "condition", "colour"),
        ({"stage": 3}, "stage", "without gaps"),
        ({"mode": "quorum"}, "quorum_count", "required"),
        ({"approver_ref": "ghosts"}, "approver_ref", "no role"),
        ({"reminder_at_percent": 50}, "reminder_at_percent", "sla_hours"),
    ],
)
def test_admin_shows_validation_errors_inline(org, dana, admin_client, step, field, fragment):
    draft = _fresh_draft(org, dana, admin_client)
    steps = [
        {"stage": 1, "name": "Manager", "approver_type": "requester_manager"},
        {"stage": 2, "name": "Finance", "approver_type": "role", "approver_ref": "finance_approver", **step},
    ]
    response = admin_client.post(_version_url(draft), _post_data(draft, steps, SCHEMA))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    errors = formset.forms[1].errors
    assert field in errors and fragment in " ".join(errors[field]), errors
    assert draft.steps.count() == 0


def test_admin_rejects_bad_form_schema(org, dana, admin_client):
    draft = _fresh_draft(org, dana, admin_client)
    response = admin_client.post(_version_url(draft), _post_data(draft, [], {"type": 12}))
    assert response.status_code == 200
    assert "form_schema" in response.context["adminform"].form.errors
    draft.refresh_from_db()
    assert draft.form_schema == {"type": "object", "properties": {}}


def test_published_version_is_read_only_in_admin(org, dana, admin_client):
    definition = make_workflow(org, actor=dana)
    published = definition.versions.get()
    page = admin_client.get(_version_url(published))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # view-only page
    response = admin_client.post(_version_url(published), _post_data(published, [], {"type": "object"}))
    assert response.status_code == 403
    published.refresh_from_db()
    assert published.form_schema["required"] == ["amount", "vendor"] and published.steps.count() == 4


def test_new_draft_action_and_publish_retires(org, dana, admin_client):
    definition = make_workflow(org, actor=dana)
    v1 = definition.versions.get()
    changelist = reverse("admin:workflows_workflowversion_changelist")
    admin_client.post(changelist, {"action": "new_draft_selected", "_selected_action": [v1.pk]})
    v2 = definition.versions.get(number=2)
    assert v2.status == "draft" and v2.steps.count() == 4
    admin_client.post(changelist, {"action": "publish_selected", "_selected_action": [v2.pk]})
    assert dict(definition.versions.values_list("number", "status")) == {1: "retired", 2: "published"}


def test_admin_is_scoped_to_the_org_and_needs_the_code(org, other_org, dana, admin_client):
    mine = make_workflow(org, actor=dana)
    other = make_workflow(other_org, key="theirs", name="Theirs")
    listing = admin_client.get(reverse("admin:workflows_workflowdefinition_changelist")).content.decode()
    assert mine.name in listing and "Theirs" not in listing
    assert admin_client.get(_version_url(other.versions.get())).status_code in (302, 404)

    clerk = make_user(org, "clerk@acme-test.test", roles=["requester"], is_staff=True)
    client = Client()
    client.login(email=clerk.email, password=PASSWORD)
    assert client.get(reverse("admin:workflows_workflowdefinition_changelist")).status_code == 403
    assert (
        client.post(
            reverse("admin:workflows_workflowversion_changelist"),
            {"action": "new_draft_selected", "_selected_action": [mine.versions.get().pk]},
        ).status_code
        == 403
    )
    assert WorkflowVersion.objects.filter(definition=mine).count() == 1


def test_admin_delete_is_soft(org, dana, admin_client):
    definition = make_workflow(org, actor=dana)
    url = reverse("admin:workflows_workflowdefinition_delete", args=[definition.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    definition = WorkflowDefinition.all_objects.get(pk=definition.pk)
    assert definition.deleted_at is not None
    assert Step.objects.filter(version__definition=definition).count() == 4
    assert AuditLog.objects.filter(action="workflow.deleted").count() == 1


# --- the builder's pages (issue 20) ---------------------------------------------------------------


def _url(name, version):
    return reverse(f"admin:workflows_workflowversion_{name}", args=[version.pk])


def test_publish_page_shows_the_diff_and_running_requests_then_publishes(org, dana, admin_client, requester):
    v1, draft = second_draft(org, dana)
    Request.objects.create(
        organization=org,
        definition=v1.definition,
        workflow_version=v1,
        requester=requester,
        status="pending",
        title="Paper",
        reference="PUR-1",
    )
    page = admin_client.get(_url("publish", draft))
    html = page.content.decode()
    assert page.status_code == 200
    assert "1 running request" in html and "stays on v1" in html
    assert "Procurement" in html and "CFO approval" in html and "cost_center" in html
    assert "sla_hours: 8 → 4" in html
    assert draft.status == "draft"  # looking changes nothing

    response = admin_client.post(_url("publish", draft))
    assert response.status_code == 302 and response["Location"] == _url("change", draft)
    draft.refresh_from_db()
    v1.refresh_from_db()
    assert (draft.status, v1.status) == ("published", "retired")
    assert AuditLog.objects.filter(action="workflow.published").count() == 2


def test_publish_page_lists_problems_and_offers_no_button(org, dana, admin_client):
    _v1, draft = second_draft(org, dana)
    Step.objects.filter(version=draft).update(approver_ref="ghosts", approver_type="role")
    html = admin_client.get(_url("publish", draft)).content.decode()
    assert "Not ready to publish" in html and "no role with slug &#x27;ghosts&#x27;" in html
    assert 'id="wf-confirm-publish"' not in html


def test_publishing_a_published_version_is_refused(org, dana, admin_client):
    v1 = make_workflow(org, actor=dana).versions.get()
    assert admin_client.get(_url("publish", v1)).status_code == 403
    assert admin_client.post(_url("publish", v1)).status_code == 403


def test_validate_button_saves_and_reports(org, dana, admin_client):
    draft = make_workflow(org, actor=dana, publish=False).versions.get()
    data = _post_data(draft, services.version_as_dict(draft)["steps"])
    data.pop("_continue")
    data["_validate"] = "1"
    response = admin_client.post(_url("change", draft), data, follow=True)
    assert "Valid: 4 step(s), 3 form field(s); ready to publish." in response.content.decode()


def test_new_draft_button_copies_the_version(org, dana, admin_client):
    v1 = make_workflow(org, actor=dana).versions.get()
    page = admin_client.get(_url("change", v1)).content.decode()
    assert 'id="wf-new-draft"' in page
    response = admin_client.post(_url("new_draft", v1))
    v2 = v1.definition.versions.get(number=2)
    assert response.status_code == 302 and response["Location"] == _url("change", v2)
    assert v2.steps.count() == 4
    again = admin_client.post(_url("new_draft", v1), follow=True)
    assert "already the draft" in again.content.decode()
    assert v1.definition.versions.count() == 2


def test_svg_export_is_the_diagram_with_every_path(org, dana, admin_client):
    v1 = make_workflow(org, actor=dana, publish=False).versions.get()
    Step.objects.filter(version=v1, name="Finance review").update(
        on_reject="return_to_requester", escalate_to="role", escalate_to_ref="cfo", on_breach="reassign"
    )
    response = admin_client.get(_url("diagram", v1))
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


def test_builder_pages_are_scoped_to_the_organization(org, other_org, dana, admin_client):
    theirs = make_workflow(other_org).versions.get()
    for name in ("publish", "diagram", "new_draft"):
        assert admin_client.get(_url(name, theirs)).status_code == 404
    assert admin_client.post(_url("new_draft", theirs)).status_code == 404
    assert theirs.definition.versions.count() == 1


def test_view_only_version_shows_the_schema_indented(org, dana, admin_client):
    v1 = make_workflow(org, actor=dana).versions.get()
    html = admin_client.get(_url("change", v1)).content.decode()
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
        {**content["steps"][1], "name": f"Extra {i}", "key": "", "stage": 4 + i, "approver_ref": "legal_approver"}
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


def test_builder_pages_cost_the_same_queries_for_any_number_of_steps(org, dana, admin_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small, large = _with_extra_steps(org, dana, 0), _with_extra_steps(org, dana, 6)
    admin_client.get(_url("change", small))  # warm the session's caches (roles, permission codes)
    counts = {}
    for version in (small, large):
        for name in ("change", "diagram", "publish"):
            with CaptureQueriesContext(connection) as ctx:
                assert admin_client.get(_url(name, version)).status_code == 200
            counts[(name, version.steps.count())] = len(ctx)
    for name in ("change", "diagram", "publish"):
        assert counts[(name, 4)] == counts[(name, 10)], counts
