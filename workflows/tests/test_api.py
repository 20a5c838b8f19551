import copy

import pytest

from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_user
from workflows.models import Step, WorkflowDefinition, WorkflowVersion
from workflows.tests.factories import make_roles, make_workflow, purchase_spec

URL = "/api/v1/workflows/"


@pytest.fixture
def designer(org):
    return make_user(org, "designer@acme-test.test", roles=["workflow_designer"])


@pytest.fixture
def roles(org):
    make_roles(org)


def _post(client, spec):
    return client.post(URL, spec, format="json")


def _state():
    return (
        WorkflowDefinition.all_objects.count(),
        WorkflowVersion.objects.count(),
        Step.objects.count(),
        sorted(WorkflowVersion.objects.values_list("status", flat=True)),
    )


def test_create_draft_v1_then_publish(designer, roles):
    client = api_client(designer)
    response = _post(client, purchase_spec())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"] == "purchase-request"
    assert body["draft_version"] == 1
    assert body["published_version"] is None
    wid = body["id"]

    draft = client.get(f"{URL}{wid}/draft/").json()
    assert draft["number"] == 1 and draft["status"] == "draft"
    assert [s["name"] for s in draft["steps"]] == ["Manager approval", "Finance review", "Legal review", "CFO approval"]

    published = client.post(f"{URL}{wid}/publish/")
    assert published.status_code == 200, published.json()
    assert published.json()["published_version"]["number"] == 1
    assert published.json()["draft_version"] is None
    actions = list(AuditLog.objects.filter(target_id=wid).order_by("sequence").values_list("action", flat=True))
    assert actions == ["workflow.created", "workflow.published"]


def test_put_draft_creates_next_version_and_publish_retires(designer, org):
    definition = make_workflow(org, actor=designer)
    client = api_client(designer)
    v1 = definition.versions.get()
    v1_steps = list(v1.steps.values_list("name", "condition"))

    assert error_code(client.get(f"{URL}{definition.pk}/draft/")) == "no_draft"
    spec = purchase_spec()
    spec["steps"][3]["condition"] = "amount > 20000"
    response = client.put(f"{URL}{definition.pk}/draft/", {"steps": spec["steps"]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["number"] == 2
    assert response.json()["form_schema"] == v1.form_schema  # copied from the published version
    # The published version did not change.
    v1.refresh_from_db()
    assert v1.status == "published"
    assert list(v1.steps.values_list("name", "condition")) == v1_steps

    assert client.post(f"{URL}{definition.pk}/publish/").status_code == 200
    statuses = dict(definition.versions.values_list("number", "status"))
    assert statuses == {1: "retired", 2: "published"}
    actions = list(AuditLog.objects.filter(target_id=str(definition.pk)).values_list("action", flat=True))
    assert "workflow.retired" in actions

    versions = client.get(f"{URL}{definition.pk}/versions/").json()
    assert [(v["number"], v["status"]) for v in versions["results"]] == [(2, "published"), (1, "retired")]


def test_publish_without_draft_is_404(designer, org):
    definition = make_workflow(org, actor=designer)
    response = api_client(designer).post(f"{URL}{definition.pk}/publish/")
    assert response.status_code == 404
    assert error_code(response) == "no_draft"


def _bad(spec_change):
    spec = purchase_spec()
    spec_change(spec)
    return spec


BAD_INPUTS = [
    ("form_schema", lambda s: s.update(form_schema={"type": "objekt"})),
    ("form_schema", lambda s: s.update(form_schema=[1])),
    ("steps[2].condition", lambda s: s["steps"][2].update(condition="amount >")),
    ("steps[2].condition", lambda s: s["steps"][2].update(condition="total > 5000")),
    ("steps[3].stage", lambda s: s["steps"][3].update(stage=4)),
    ("steps[0].stage", lambda s: s["steps"][0].update(stage=0)),
    ("steps[1].quorum_count", lambda s: s["steps"][1].update(mode="quorum")),
    ("steps[1].quorum_count", lambda s: s["steps"][1].update(quorum_count=2)),
    ("steps[1].quorum_count", lambda s: s["steps"][1].update(mode="quorum", quorum_count=3)),
    ("steps[0].quorum_count", lambda s: s["steps"][0].update(mode="quorum", quorum_count=2)),
    ("steps[1].approver_ref", lambda s: s["steps"][1].update(approver_ref="nope")),
    ("steps[1].approver_ref", lambda s: s["steps"][1].update(approver_type="user", approver_ref="ghost@x.test")),
    ("steps[1].approver_ref", lambda s: s["steps"][1].update(approver_type="form_field", approver_ref="boss")),
    ("steps[0].approver_ref", lambda s: s["steps"][0].update(approver_ref="someone")),
    ("steps[1].mode", lambda s: s["steps"][1].update(mode="most")),
    ("steps[0].sla_hours", lambda s: s["steps"][0].update(sla_hours=-1)),
    ("steps[0].sla_hours", lambda s: s["steps"][0].update(sla_hours="eight")),
    ("steps[2].reminder_at_percent", lambda s: s["steps"][2].update(reminder_at_percent=50)),
    ("steps[0].reminder_at_percent", lambda s: s["steps"][0].update(reminder_at_percent=150)),
    ("steps[2].on_breach", lambda s: s["steps"][2].update(on_breach="auto_approve")),
    ("steps[0].escalate_to", lambda s: s["steps"][0].update(on_breach="reassign")),
    ("steps[0].escalate_to_ref", lambda s: s["steps"][0].update(escalate_to="role", escalate_to_ref="ghosts")),
    ("steps[0].max_escalations", lambda s: s["steps"][0].update(escalation_repeat_hours=4, max_escalations=1)),
    ("steps[1].name", lambda s: s["steps"][1].update(name="Manager approval")),
    ("steps[0].name", lambda s: s["steps"][0].update(name="")),
    ("steps[0]", lambda s: s["steps"][0].update(colour="red")),
    ("steps", lambda s: s.update(steps={"a": 1})),
]


@pytest.mark.parametrize(("field", "change"), BAD_INPUTS)
def test_each_validation_rule_answers_400_naming_the_field(designer, roles, field, change):
    before = _state()
    response = _post(api_client(designer), _bad(change))
    assert response.status_code == 400, response.json()
    assert error_code(response) == "validation_error"
    details = response.json()["error"]["details"]
    assert field in details, details
    assert all(isinstance(m, str) and m for m in details[field])
    assert _state() == before


def test_condition_error_names_the_step_and_position(designer, roles):
    spec = purchase_spec()
    spec["steps"][2]["condition"] = "amount > 5000 && colour == 1"
    details = _post(api_client(designer), spec).json()["error"]["details"]
    message = details["steps[2].condition"][0]
    assert "Legal review" in message and "column 18" in message and "colour" in message


def test_put_draft_validation_errors_change_nothing(designer, org):
    definition = make_workflow(org, actor=designer)
    client = api_client(designer)
    spec = purchase_spec()
    spec["steps"][3]["condition"] = "amount >>> 3"
    before = _state()
    response = client.put(f"{URL}{definition.pk}/draft/", {"steps": spec["steps"]}, format="json")
    assert response.status_code == 400
    assert "steps[3].condition" in response.json()["error"]["details"]
    assert _state() == before


def test_duplicate_key_is_400(designer, org):
    make_workflow(org, actor=designer)
    response = _post(api_client(designer), purchase_spec())
    assert response.status_code == 400
    assert "key" in response.json()["error"]["details"]


def test_requester_cannot_write_and_nothing_changes(requester, org):
    definition = make_workflow(org)
    client = api_client(requester)
    before = _state()
    name = definition.name
    for response in [
        _post(client, purchase_spec(key="other")),
        client.put(f"{URL}{definition.pk}/", {"name": "Hacked"}, format="json"),
        client.patch(f"{URL}{definition.pk}/", {"name": "Hacked"}, format="json"),
        client.delete(f"{URL}{definition.pk}/"),
        client.put(f"{URL}{definition.pk}/draft/", {"steps": []}, format="json"),
        client.post(f"{URL}{definition.pk}/publish/"),
        client.get(f"{URL}{definition.pk}/draft/"),
    ]:
        assert response.status_code == 403, response.content
        assert error_code(response) == "permission_denied"
    definition.refresh_from_db()
    assert definition.name == name and definition.deleted_at is None
    assert _state() == before


def test_member_reads_published_active_workflows_only(requester, designer, org):
    published = make_workflow(org, actor=designer)
    draft_only = make_workflow(org, actor=designer, publish=False, key="draft-only", name="Draft only")
    client = api_client(requester)
    listing = client.get(URL).json()
    assert [w["key"] for w in listing["results"]] == [published.key]
    assert listing["results"][0]["published_version"]["steps"][0]["name"] == "Manager approval"
    assert listing["results"][0]["draft_version"] is None
    assert client.get(f"{URL}{draft_only.pk}/").status_code == 404
    assert client.get(f"{URL}{published.key}/").json()["id"] == str(published.pk)  # by key too
    versions = client.get(f"{URL}{published.pk}/versions/").json()
    assert [v["status"] for v in versions["results"]] == ["published"]

    api_client(designer).patch(f"{URL}{published.pk}/", {"is_active": False}, format="json")
    assert client.get(URL).json()["count"] == 0
    assert api_client(designer).get(URL).json()["count"] == 2


def test_other_org_is_404(designer, org, other_admin):
    definition = make_workflow(org, actor=designer)
    client = api_client(other_admin)
    before = _state()
    for response in [
        client.get(f"{URL}{definition.pk}/"),
        client.get(f"{URL}{definition.key}/"),
        client.get(f"{URL}{definition.pk}/draft/"),
        client.get(f"{URL}{definition.pk}/versions/"),
        client.put(f"{URL}{definition.pk}/draft/", {"steps": []}, format="json"),
        client.post(f"{URL}{definition.pk}/publish/"),
        client.delete(f"{URL}{definition.pk}/"),
    ]:
        assert response.status_code == 404, response.content
        assert error_code(response) == "not_found"
    assert client.get(URL).json()["count"] == 0
    assert _state() == before


def test_delete_is_soft_and_audited(designer, org):
    definition = make_workflow(org, actor=designer)
    client = api_client(designer)
    assert client.delete(f"{URL}{definition.pk}/").status_code == 204
    definition = WorkflowDefinition.all_objects.get(pk=definition.pk)
    assert definition.deleted_at is not None and not definition.is_active
    assert definition.versions.count() == 1
    assert client.get(f"{URL}{definition.pk}/").status_code == 404
    assert AuditLog.objects.filter(action="workflow.deleted", target_id=str(definition.pk)).exists()
    # The key is free again.
    assert _post(client, purchase_spec()).status_code == 201


def test_idempotent_create(designer, roles):
    client = api_client(designer)
    first = client.post(URL, purchase_spec(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post(URL, purchase_spec(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert WorkflowDefinition.objects.count() == 1


@pytest.mark.parametrize("page_size", [1, 50])
def test_list_query_count_is_constant(designer, org, page_size, django_assert_num_queries):
    make_roles(org)
    from workflows import services

    for i in range(page_size):
        spec = copy.deepcopy(purchase_spec(key=f"wf-{i}", name=f"Workflow {i:02d}"))
        definition = services.workflow_create(actor=designer, organization=org, **spec)
        services.version_publish(actor=designer, version=definition.versions.get())
        services.draft_from_version(actor=designer, version=definition.versions.get())
    client = api_client(designer)
    # auth user with its role codes, count, page, versions, steps, published_by
    with django_assert_num_queries(5):
        response = client.get(f"{URL}?page_size={page_size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size


@pytest.mark.parametrize("stage", [-1, 0, 2**63, -(2**63), 10**40, "-1", "9" * 40, 1.5, True, None])
def test_out_of_range_stage_is_a_400_naming_the_step(designer, roles, stage):
    """stage -1 answered 500 (IndexError) and 2**63 500 (OverflowError): both are the client's input (issue 19.8)."""
    spec = purchase_spec()
    # The hostile step added next to a valid stage 1 (the gap arithmetic met both).
    spec["steps"] = [{**spec["steps"][0], "name": "Extra", "stage": stage}, *spec["steps"]]
    before = _state()
    response = _post(api_client(designer), spec)
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert "steps[0].stage" in response.json()["error"]["details"]
    assert _state() == before
