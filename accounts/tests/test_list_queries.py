"""Statements of the accounts list endpoints do not grow with the rows listed (1 row, then 10)."""

import pytest

from accounts.services import login_complete
from core.testing import api_client, make_role, make_user

pytestmark = pytest.mark.django_db

# The caller (JWT: the user with organization, department and roles), count, page; every login
# revokes the caller's copy (accounts/auth_cache.py), so the caller is read each time.
SESSIONS = 3
# Count, page; the caller from the process's copy (warmed first: accounts/auth_cache.py).
ROLES = 2
# The role, count, page (memberships with their users joined); the caller from its copy.
MEMBERS = 3


def listed(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_sessions_list(requester, django_assert_num_queries):
    login_complete(user=requester)
    client = api_client(requester)
    with django_assert_num_queries(SESSIONS):
        assert len(listed(client, "/api/v1/auth/sessions/")) == 1
    for _ in range(9):
        login_complete(user=requester)
    with django_assert_num_queries(SESSIONS):
        assert len(listed(client, "/api/v1/auth/sessions/")) == 10


def test_roles_list(admin_user, org, django_assert_num_queries):
    client = api_client(admin_user)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on
    for i in range(6):  # beside the four built-in roles: ten in all
        make_role(org, f"custom_{i}", ["requests.create"])
    with django_assert_num_queries(ROLES):
        assert len(listed(client, "/api/v1/roles/", page_size=1)) == 1
    with django_assert_num_queries(ROLES):
        assert len(listed(client, "/api/v1/roles/", page_size=10)) == 10


def test_role_members_list(admin_user, org, django_assert_num_queries):
    role = make_role(org, "reviewer")
    make_user(org, "m0@acme-test.test", roles=["reviewer"])
    client = api_client(admin_user)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on
    url = f"/api/v1/roles/{role.pk}/members/"
    with django_assert_num_queries(MEMBERS):
        assert len(listed(client, url)) == 1
    for i in range(1, 10):
        make_user(org, f"m{i}@acme-test.test", roles=["reviewer"])
    with django_assert_num_queries(MEMBERS):
        assert len(listed(client, url)) == 10
