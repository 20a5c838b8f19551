import copy

from core.testing import make_role, make_user
from workflows import services
from workflows.demo import PURCHASE_REQUEST


def purchase_spec(**overrides) -> dict:
    spec = copy.deepcopy(PURCHASE_REQUEST)
    spec.update(overrides)
    return spec


def make_roles(org):
    for slug in ("finance_approver", "legal_approver", "cfo"):
        make_role(org, slug)
    make_user(org, roles=["finance_approver"])
    make_user(org, roles=["finance_approver"])
    make_user(org, roles=["legal_approver"])
    make_user(org, roles=["cfo"])


def make_workflow(org, actor=None, publish=True, **overrides):
    make_roles(org)
    spec = purchase_spec(**overrides)
    definition = services.workflow_create(actor=actor, organization=org, **spec)
    if publish:
        services.version_publish(actor=actor, version=definition.versions.get(status="draft"))
    return definition


def second_draft(org, dana):
    """A published v1 of the purchase request and a v2 draft that adds, removes and changes steps and fields."""
    definition = make_workflow(org, actor=dana)
    v1 = definition.versions.get()
    draft = services.draft_from_version(actor=dana, version=v1)
    content = services.version_as_dict(draft)
    steps = [s for s in content["steps"] if s["name"] != "CFO approval"]
    steps[0]["sla_hours"] = 4
    steps.append(
        {**steps[1], "name": "Procurement", "key": "procurement", "stage": 3, "approver_ref": "cfo", "condition": ""}
    )
    schema = {**content["form_schema"], "properties": {**content["form_schema"]["properties"]}}
    schema["properties"]["cost_center"] = {"type": "string"}
    del schema["properties"]["justification"]
    schema["properties"]["vendor"] = {**schema["properties"]["vendor"], "title": "Supplier"}
    services.draft_save(
        actor=dana, definition=definition, version=draft, form_schema=schema, distinct_approvers=True, steps=steps
    )
    draft.refresh_from_db()
    return v1, draft
