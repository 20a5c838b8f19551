"""What the publish confirmation lists (issue 20.3)."""

import pytest

from core.testing import make_user
from workflows import services
from workflows.tests.factories import second_draft
from workflows.version_diff import diff_versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def dana(org):
    return make_user(org, "dana@acme-test.test", roles=["workflow_designer"], is_staff=True)


def test_diff_names_steps_and_fields_added_removed_changed(org, dana):
    v1, draft = second_draft(org, dana)
    diff = diff_versions(current=services.version_as_dict(v1), draft=services.version_as_dict(draft))
    assert diff.steps_added == ["Procurement"] and diff.steps_removed == ["CFO approval"]
    assert [(c.name, c.details) for c in diff.steps_changed] == [("Manager approval", ["sla_hours: 8 → 4"])]
    assert diff.fields_added == ["cost_center"] and diff.fields_removed == ["justification"]
    assert [(c.name, c.details) for c in diff.fields_changed] == [("vendor", ["title: Vendor → Supplier"])]
    assert diff.other == ["distinct approvers: False → True"]
