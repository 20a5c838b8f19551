"""accounts.serializers.me_payload answers what MeSerializer answers (the schema of auth/me)."""

import json

import pytest
from rest_framework.renderers import JSONRenderer

from accounts.serializers import MeSerializer, me_payload
from core.testing import api_client, make_department, make_user

pytestmark = pytest.mark.django_db


def _json(data) -> dict:
    return json.loads(JSONRenderer().render(data))


def test_me_payload_is_the_serializers_answer_for_every_shape_of_user(org):
    dept = make_department(org, "Finance")
    boss = make_user(org, roles=["org_admin"])
    full = make_user(
        org, roles=["requester", "finance_approver"], first_name="Ann", title="Buyer", department=dept, manager=boss
    )
    bare = make_user(org)
    for user in (full, bare, boss):
        user.refresh_from_db()
        assert _json(me_payload(user)) == _json(MeSerializer(user).data)
    assert _json(me_payload(full))["department"] == {"id": str(dept.pk), "name": "Finance"}
    assert _json(me_payload(full))["manager"] == str(boss.pk)
    assert _json(me_payload(bare))["department"] is None and _json(me_payload(bare))["manager"] is None


def test_auth_me_answers_the_payload(org):
    user = make_user(org, roles=["requester"])
    answer = api_client(user).get("/api/v1/auth/me/")
    assert answer.status_code == 200
    user.refresh_from_db()
    assert answer.json() == _json(MeSerializer(user).data)
