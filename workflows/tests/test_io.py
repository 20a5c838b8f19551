import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from auditlogs.models import AuditLog
from workflows.models import WorkflowDefinition
from workflows.tests.factories import make_workflow


def _export(org, key="purchase-request") -> str:
    from io import StringIO

    out = StringIO()
    call_command("workflow_export", key, "--org", org.slug, stdout=out)
    return out.getvalue()


def test_export_import_export_is_byte_identical(org, other_org, tmp_path):
    make_workflow(org)
    first = _export(org)
    document = json.loads(first)
    assert document["key"] == "purchase-request" and len(document["steps"]) == 4
    path = tmp_path / "wf.json"
    path.write_text(first, encoding="utf-8")

    # Into the same org, changed: a new draft v2, then published.
    changed = {**document, "description": "Buy things, v2"}
    path.write_text(json.dumps(changed), encoding="utf-8")
    call_command("workflow_import", str(path), "--org", org.slug, "--publish", stdout=StringIO())
    definition = WorkflowDefinition.objects.get(organization=org, key="purchase-request")
    assert dict(definition.versions.values_list("number", "status")) == {1: "retired", 2: "published"}
    assert json.loads(_export(org)) == changed
    path.write_text(first, encoding="utf-8")

    # Into another org (roles must exist there).
    from workflows.tests.factories import make_roles

    make_roles(other_org)
    call_command("workflow_import", str(path), "--org", other_org.slug, stdout=StringIO())
    assert _export(other_org) == first  # exports the draft when nothing is published


def test_reimporting_an_identical_definition_is_a_no_op_that_says_so(org, tmp_path):
    make_workflow(org)
    path = tmp_path / "wf.json"
    path.write_text(_export(org), encoding="utf-8")
    definition = WorkflowDefinition.objects.get(organization=org, key="purchase-request")
    audit_rows = AuditLog.objects.count()
    for _ in range(2):
        out = StringIO()
        call_command("workflow_import", str(path), "--org", org.slug, "--publish", stdout=out)
        assert out.getvalue() == "purchase-request: unchanged: identical to published version 1, nothing imported.\n"
    assert dict(definition.versions.values_list("number", "status")) == {1: "published"}
    assert AuditLog.objects.count() == audit_rows


def test_importing_a_draft_identical_to_the_current_draft_publishes_it_without_a_new_version(org, tmp_path):
    make_workflow(org)
    document = json.loads(_export(org))
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({**document, "name": "Purchase, renamed"}), encoding="utf-8")
    call_command("workflow_import", str(path), "--org", org.slug, stdout=StringIO())  # draft v2
    out = StringIO()
    call_command("workflow_import", str(path), "--org", org.slug, "--publish", stdout=out)
    assert out.getvalue() == "purchase-request: identical to draft version 2, published it.\n"
    definition = WorkflowDefinition.objects.get(organization=org, key="purchase-request")
    assert dict(definition.versions.values_list("number", "status")) == {1: "retired", 2: "published"}


def test_export_without_org_finds_the_only_organization_with_that_key(org, other_org):
    make_workflow(org)
    out = StringIO()
    call_command("workflow_export", "purchase-request", stdout=out)
    assert json.loads(out.getvalue())["key"] == "purchase-request"
    with pytest.raises(
        CommandError, match=r"^Several organizations exist \(acme-test, other-test\): add --org SLUG\.$"
    ):
        call_command("workflow_export", "nope", stdout=StringIO())


def test_export_without_org_names_the_organizations_that_share_the_key(org, other_org):
    make_workflow(org)
    make_workflow(other_org)
    with pytest.raises(CommandError) as info:
        call_command("workflow_export", "purchase-request", stdout=StringIO())
    assert str(info.value) == (
        "Workflow 'purchase-request' exists in several organizations (acme-test, other-test): add --org SLUG."
    )


def test_import_rejects_invalid_and_changes_nothing(org, tmp_path):
    make_workflow(org)
    document = json.loads(_export(org))
    document["steps"][2]["condition"] = "amount > "
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError) as info:
        call_command("workflow_import", str(path), "--org", org.slug)
    assert "steps[2].condition" in str(info.value)
    assert WorkflowDefinition.objects.get(key="purchase-request").versions.count() == 1


def test_export_unknown_key(org):
    with pytest.raises(CommandError):
        _export(org, "nope")
