import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

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

    # Into the same org: a new draft v2, then published.
    call_command("workflow_import", str(path), "--org", org.slug, "--publish", stdout=StringIO())
    definition = WorkflowDefinition.objects.get(organization=org, key="purchase-request")
    assert dict(definition.versions.values_list("number", "status")) == {1: "retired", 2: "published"}
    assert _export(org) == first

    # Into another org (roles must exist there).
    from workflows.tests.factories import make_roles

    make_roles(other_org)
    call_command("workflow_import", str(path), "--org", other_org.slug, stdout=StringIO())
    assert _export(other_org) == first  # exports the draft when nothing is published


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
