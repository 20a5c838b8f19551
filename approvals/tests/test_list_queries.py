"""Statements of delegations/ do not grow with the delegations listed (1, then 10)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.services import delegation_create
from core.testing import api_client, make_user

pytestmark = pytest.mark.django_db

# (The caller from the process's copy, warmed first: accounts/auth_cache.py.) Count, page (with both users
# and the workflow joined), the open tasks the page's delegations are not used for (one query).
DELEGATIONS = 3


@pytest.mark.parametrize("direction", ["given", "received"])
def test_delegations_list(org, direction, django_assert_num_queries):
    me = make_user(org, "me@acme-test.test")
    others = [make_user(org, f"other{i}@acme-test.test") for i in range(10)]
    start = timezone.now() + timedelta(days=1)
    client = api_client(me)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on

    def delegate(i):
        giver, taker = (me, others[i]) if direction == "given" else (others[i], me)
        delegation_create(actor=giver, to_user=taker, starts_at=start, ends_at=start + timedelta(days=7))

    def listed():
        response = client.get("/api/v1/delegations/", {"direction": direction})
        assert response.status_code == 200, response.content
        return response.json()["results"]

    delegate(0)
    with django_assert_num_queries(DELEGATIONS):
        assert len(listed()) == 1
    for i in range(1, 10):
        delegate(i)
    with django_assert_num_queries(DELEGATIONS):
        assert len(listed()) == 10
