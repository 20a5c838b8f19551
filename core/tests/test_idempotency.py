"""core.idempotency as served: outside a transaction (autocommit), as a request runs in production."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import IdempotencyRecord
from core.testing import api_client, error_code, make_org, make_user
from requests.tests.factories import make_flow, user_step

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_key_costs_two_statements_and_a_repeat_replays_on_a_usable_connection():
    org = make_org("idem-test")
    alice, mark = make_user(org, roles=["requester"]), make_user(org)
    flow = make_flow(org, [user_step(1, "First", mark)])
    client = api_client(alice)
    body = {"workflow": flow.definition.key, "title": "Desk", "data": {"amount": 5, "vendor": "v"}}
    client.post("/api/v1/requests/", body, format="json")  # warm

    with CaptureQueriesContext(connection) as plain:
        assert client.post("/api/v1/requests/", body, format="json").status_code == 201
    with CaptureQueriesContext(connection) as keyed:
        first = client.post("/api/v1/requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    assert len(keyed) == len(plain) + 2  # the key's insert (committed on its own) and the answer's update
    assert IdempotencyRecord.objects.get(key="k-1").response_status == 201

    again = client.post("/api/v1/requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201 and again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    reused = client.post("/api/v1/requests/", {**body, "title": "Chair"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert reused.status_code == 409 and error_code(reused) == "idempotency_key_reused"

    fingerprint = IdempotencyRecord.objects.get(key="k-1").fingerprint  # same method, path and body
    IdempotencyRecord.objects.create(
        user=alice, key="k-2", method="POST", path="/api/v1/requests/", fingerprint=fingerprint
    )
    busy = client.post("/api/v1/requests/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert busy.status_code == 409 and error_code(busy) == "idempotency_in_progress"
    assert client.post("/api/v1/requests/", body, format="json").status_code == 201  # the connection still works
