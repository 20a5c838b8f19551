import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction

from core.exceptions import Conflict, ValidationFailed
from workflows import services
from workflows.models import Step, WorkflowDefinition, WorkflowVersion
from workflows.tests.factories import make_workflow, purchase_spec


def test_published_version_cannot_be_saved_through_the_service(org):
    definition = make_workflow(org)
    published = definition.versions.get()
    with pytest.raises(services.VersionImmutable):
        services.draft_save(
            actor=None, definition=definition, version=published, form_schema=published.form_schema, steps=[]
        )
    assert published.steps.count() == 4


def test_database_refuses_changes_to_published_versions(org):
    definition = make_workflow(org)
    published = definition.versions.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        WorkflowVersion.objects.filter(pk=published.pk).update(form_schema={})
    with pytest.raises(DatabaseError), transaction.atomic():
        Step.objects.filter(version=published).update(condition="true")
    with pytest.raises(DatabaseError), transaction.atomic():
        Step.objects.filter(version=published).delete()
    published.refresh_from_db()
    assert published.form_schema["required"] == ["amount", "vendor"]
    assert published.steps.count() == 4


def test_draft_from_published_copies_everything(org):
    definition = make_workflow(org)
    published = definition.versions.get()
    draft = services.draft_from_version(actor=None, version=published)
    assert draft.number == 2 and draft.status == "draft"
    assert services.version_as_dict(draft) == services.version_as_dict(published)
    with pytest.raises(Conflict):
        services.draft_from_version(actor=None, version=published)


def test_publish_revalidates_references(org):
    definition = make_workflow(org, publish=False)
    draft = definition.versions.get()
    from accounts.models import Role

    Role.objects.filter(organization=org, slug="cfo").delete()
    with pytest.raises(ValidationFailed) as info:
        services.version_publish(actor=None, version=draft)
    assert "steps[3].approver_ref" in info.value.details
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_seed_demo_twice(db):
    call_command("seed_demo")
    call_command("seed_demo")
    from organizations.models import Organization

    acme = Organization.objects.get(slug="acme")
    defs = WorkflowDefinition.objects.filter(organization=acme).order_by("key")
    assert [d.key for d in defs] == ["expense-claim", "leave-request", "purchase-request"]
    for d in defs:
        assert list(d.versions.values_list("status", flat=True)) == ["published"]
    pr = services.version_as_dict(defs.get(key="purchase-request").versions.get())
    expected = purchase_spec()["steps"]
    got = [
        {k: s[k] for k in ("stage", "name", "approver_type", "approver_ref", "mode", "condition", "sla_hours")}
        for s in pr["steps"]
    ]
    assert got == [
        {
            "stage": 1,
            "name": "Manager approval",
            "approver_type": "requester_manager",
            "approver_ref": "",
            "mode": "any",
            "condition": "",
            "sla_hours": 8,
        },
        {
            "stage": 2,
            "name": "Finance review",
            "approver_type": "role",
            "approver_ref": "finance_approver",
            "mode": "all",
            "condition": "",
            "sla_hours": 16,
        },
        {
            "stage": 2,
            "name": "Legal review",
            "approver_type": "role",
            "approver_ref": "legal_approver",
            "mode": "any",
            "condition": "amount > 5000",
            "sla_hours": None,
        },
        {
            "stage": 3,
            "name": "CFO approval",
            "approver_type": "role",
            "approver_ref": "cfo",
            "mode": "any",
            "condition": "amount > 10000",
            "sla_hours": None,
        },
    ]
    assert len(expected) == 4
    assert pr["form_schema"]["required"] == ["amount", "vendor"]


def test_steps_get_a_key_from_their_name_and_a_new_draft_keeps_it_through_a_rename(org):
    definition = make_workflow(org)
    published = definition.versions.get()
    keys = {s.name: s.key for s in published.steps.all()}
    assert keys["CFO approval"] == "cfo-approval" and len(set(keys.values())) == len(keys)
    draft = services.draft_from_version(actor=None, version=published)
    content = services.version_as_dict(draft)
    cfo = next(s for s in content["steps"] if s["name"] == "CFO approval")
    cfo["name"] = "Chief financial officer"
    services.draft_save(
        actor=None, definition=definition, version=draft, form_schema=content["form_schema"], steps=content["steps"]
    )
    assert draft.steps.get(name="Chief financial officer").key == "cfo-approval"


def test_a_duplicate_or_malformed_step_key_is_refused(org):
    definition = make_workflow(org, publish=False)
    draft = definition.versions.get()
    content = services.version_as_dict(draft)
    before = list(draft.steps.values_list("name", "key"))
    for bad in ([content["steps"][0]["key"], "steps[1].key"], ["Not A Key!", "steps[1].key"]):
        steps = [dict(s) for s in content["steps"]]
        steps[1]["key"] = bad[0]
        with pytest.raises(ValidationFailed) as info:
            services.draft_save(
                actor=None, definition=definition, version=draft, form_schema=content["form_schema"], steps=steps
            )
        assert bad[1] in info.value.details
    assert list(draft.steps.values_list("name", "key")) == before
