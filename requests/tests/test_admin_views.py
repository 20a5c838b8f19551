"""The admin builder's Simulate panel: the preview-route service for a chosen requester (issue 20.5)."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from core.testing import PASSWORD, make_user
from workflows.tests.factories import make_workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def designer(org):
    dana = make_user(org, "dana@acme-test.test", roles=["workflow_designer"], is_staff=True)
    client = Client()
    assert client.login(email=dana.email, password=PASSWORD)
    return client


def _simulate(client, version, payload):
    return client.post(
        reverse("workflow-simulate", args=[version.pk]), json.dumps(payload), content_type="application/json"
    )


def test_simulate_shows_applied_and_skipped_steps(org, designer):
    version = make_workflow(org).versions.get()
    manager = make_user(org, "boss@acme-test.test", first_name="Bo", last_name="Boss")
    make_user(org, "rita@acme-test.test", manager=manager)

    small = _simulate(designer, version, {"requester": "RITA@acme-test.test", "data": {"amount": 100, "vendor": "X"}})
    html = small.content.decode()
    assert small.status_code == 200
    assert '<tr class="wf-sim-active" data-step="Manager approval">' in html and "Bo Boss" in html
    assert '<tr class="wf-sim-skipped" data-step="CFO approval">' in html
    assert "skipped: amount &gt; 10000 is false for this data" in html

    large = _simulate(designer, version, {"requester": "rita@acme-test.test", "data": {"amount": 50000, "vendor": "X"}})
    assert '<tr class="wf-sim-active" data-step="CFO approval">' in large.content.decode()


def test_simulate_reports_data_the_form_would_refuse(org, designer):
    version = make_workflow(org).versions.get()
    make_user(org, "rita@acme-test.test")
    html = _simulate(designer, version, {"requester": "rita@acme-test.test", "data": {"amount": "lots"}}).content
    assert b"The request would be refused with this data." in html


@pytest.mark.parametrize(
    "body", ["not json", json.dumps([1]), json.dumps({"requester": "nobody@x.test"}), json.dumps({"data": "x"})]
)
def test_simulate_refuses_bad_input_with_400(org, designer, body):
    version = make_workflow(org).versions.get()
    response = designer.post(reverse("workflow-simulate", args=[version.pk]), body, content_type="application/json")
    assert response.status_code == 400


def test_simulate_is_scoped_and_needs_the_code(org, other_org, designer, client, requester):
    theirs = make_workflow(other_org).versions.get()
    make_user(other_org, "them@other-test.test")
    assert _simulate(designer, theirs, {"requester": "them@other-test.test", "data": {}}).status_code == 404
    ours = make_workflow(org).versions.get()
    # Not staff: the admin login page, never the route.
    assert client.login(email=requester.email, password=PASSWORD)
    response = _simulate(client, ours, {"requester": requester.email, "data": {}})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    # Staff without workflows.manage: no such page.
    staff = make_user(org, "staff@acme-test.test", roles=["requester"], is_staff=True)
    assert client.login(email=staff.email, password=PASSWORD)
    assert _simulate(client, ours, {"requester": requester.email, "data": {}}).status_code == 404
