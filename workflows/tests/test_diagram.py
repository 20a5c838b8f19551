"""The route diagram's SVG (issue 20.4); the export through the admin is in test_admin.py."""

import pytest

from core.testing import make_user
from workflows.diagram import route_svg
from workflows.models import Step
from workflows.tests.factories import make_workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def dana(org):
    return make_user(org, "dana@acme-test.test", roles=["workflow_designer"], is_staff=True)


def test_diagram_escapes_what_designers_type(org, dana):
    v1 = make_workflow(org, actor=dana, publish=False).versions.get()
    Step.objects.filter(version=v1, name="Finance review").update(name="<script>alert(1)</script>")
    svg = route_svg(v1)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_a_version_without_steps_goes_straight_to_approved(org, dana):
    draft = make_workflow(org, actor=dana, publish=False, steps=[]).versions.get()
    svg = route_svg(draft)
    assert "No steps yet" in svg and "Approved" in svg and "Rejected" not in svg
