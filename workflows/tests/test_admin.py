import pytest
from django.test import Client
from django.urls import reverse

from auditlogs.models import AuditLog
from core.testing import PASSWORD, make_user
from workflows.models import Step, WorkflowDefinition, WorkflowVersion
from workflows.tests.factories import make_roles, make_workflow
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
