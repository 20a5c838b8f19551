"""The per-process copy of the authenticated user and its revocation channel (accounts/auth_cache.py).

"Another process" here is the copies this process held before a change, put back after the
service ran (the service drops this process's own copies; a second process keeps its own until
its next request reads the stamps). The integration test at the end runs two real servers.
"""

import httpx
import pytest
from django.core.cache import cache
from redis.connection import Connection
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import auth_cache, services
from accounts.models import Role
from core.testing import PASSWORD, api_client, error_code, make_department, make_org, make_role, make_user
from core.tests.servers import daphne_servers
from organizations import services as org_services

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me/"
ROLES = "/api/v1/roles/"


@pytest.fixture(autouse=True)
def _cold():
    auth_cache.forget_all()
    yield
    auth_cache.forget_all()


class OtherProcess:
    """The copies a second process made of the users it served, kept across a change."""

    def __init__(self):
        self.copies = dict(auth_cache._entries)

    def serves(self):
        auth_cache._entries.update(self.copies)


def warm(client, times: int = 2) -> None:
    for _ in range(times):
        assert client.get(ME).status_code == 200


def test_me_costs_one_query_cold_and_none_warm(requester, django_assert_num_queries):
    client = api_client(requester)
    with django_assert_num_queries(1):  # the user with organization, department and roles
        assert client.get(ME).status_code == 200
    with django_assert_num_queries(0):
        response = client.get(ME)
    assert response.status_code == 200
    assert response.json()["roles"] == ["requester"]
    assert response.json()["organization"]["slug"] == "acme-test"


def test_a_request_is_one_redis_round_trip_with_the_throttle(requester, monkeypatch, django_assert_num_queries):
    sends = []
    original = Connection.send_packed_command
    monkeypatch.setattr(
        Connection, "send_packed_command", lambda self, *a, **kw: sends.append(1) or original(self, *a, **kw)
    )
    client = api_client(requester)
    assert client.get(ME).status_code == 200
    assert len(sends) == 2  # no stamps yet: they are set (once per stamp lifetime), then the query
    auth_cache.forget_all()  # a process that has not served the user yet
    sends.clear()
    with django_assert_num_queries(1):
        assert client.get(ME).status_code == 200
    assert len(sends) == 1
    sends.clear()
    with django_assert_num_queries(0):
        assert client.get(ME).status_code == 200
    assert len(sends) == 1  # the throttle's hit and the stamps


def test_each_request_gets_its_own_user_instance(requester):
    client = api_client(requester)
    warm(client, 1)
    first = client.get(ME).wsgi_request.user
    second = client.get(ME).wsgi_request.user
    assert first == second and first is not second
    assert first.organization is not second.organization


def test_deactivation_in_another_process_is_401_at_once(admin_user, requester):
    client = api_client(requester)
    warm(client)
    other = OtherProcess()
    services.user_deactivate(actor=admin_user, user=requester)
    other.serves()
    response = client.get(ME)
    assert response.status_code == 401 and error_code(response) == "authentication_failed"
    assert response.json()["error"]["message"] == "User not found or inactive."


def test_revoked_tokens_in_another_process_are_401_at_once(requester):
    refresh = RefreshToken.for_user(requester)
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    warm(client)
    other = OtherProcess()
    services.password_set(actor=None, user=requester, new_password="Another-Pass-2026!")
    other.serves()
    response = client.get(ME)
    assert response.status_code == 401 and error_code(response) == "authentication_failed"
    assert response.json()["error"]["message"] == "Token has been revoked."


def test_role_removed_in_another_process_takes_the_permission_at_once(org, admin_user):
    make_role(org, "role_admin", ["roles.manage"])
    user = make_user(org, "ra@acme-test.test", roles=["role_admin"])
    client = api_client(user)
    warm(client)
    assert client.post(ROLES, {}, format="json").status_code == 400  # allowed: refused on the body only
    other = OtherProcess()
    services.role_member_remove(actor=admin_user, role=Role.objects.get(organization=org, slug="role_admin"), user=user)
    other.serves()
    assert client.get(ME).json()["roles"] == []
    response = client.post(ROLES, {}, format="json")
    assert response.status_code == 403


def test_role_granted_in_another_process_shows_at_once(org, admin_user, requester):
    role = make_role(org, "role_admin", ["roles.manage"])
    client = api_client(requester)
    warm(client)
    assert client.post(ROLES, {}, format="json").status_code == 403
    other = OtherProcess()
    services.role_member_add(actor=admin_user, role=role, user=requester)
    other.serves()
    assert client.post(ROLES, {}, format="json").status_code == 400


def test_a_roles_permissions_changed_in_another_process_apply_at_once(org, admin_user):
    role = make_role(org, "role_admin", ["roles.manage"])
    user = make_user(org, "ra@acme-test.test", roles=["role_admin"])
    client = api_client(user)
    warm(client)
    other = OtherProcess()
    services.role_update(actor=admin_user, role=role, permissions=[])
    other.serves()
    assert client.post(ROLES, {}, format="json").status_code == 403
    assert "roles.manage" not in client.get(ME).json()["permissions"]


def test_organization_and_department_changes_show_at_once(org, admin_user):
    dept = make_department(org, "Finance")
    user = make_user(org, "fin@acme-test.test", department=dept)
    client = api_client(user)
    warm(client)
    other = OtherProcess()
    org_services.organization_update(actor=admin_user, organization=org, name="Acme Renamed")
    org_services.department_update(actor=admin_user, department=dept, name="Treasury")
    other.serves()
    body = client.get(ME).json()
    assert body["organization"]["name"] == "Acme Renamed"
    assert body["department"]["name"] == "Treasury"


def test_profile_update_in_another_process_shows_at_once(admin_user, requester):
    client = api_client(requester)
    warm(client)
    other = OtherProcess()
    services.user_update(actor=admin_user, user=requester, title="Controller")
    other.serves()
    assert client.get(ME).json()["title"] == "Controller"


def test_a_copy_is_not_used_past_its_lifetime(requester, settings, django_assert_num_queries):
    settings.AUTH_USER_CACHE_SECONDS = 0
    client = api_client(requester)
    warm(client, 1)
    with django_assert_num_queries(1):
        assert client.get(ME).status_code == 200


def test_lost_stamps_are_a_miss_never_a_match(requester, django_assert_num_queries):
    """Redis losing its data (a restart without persistence): the copies tagged before are not used."""
    client = api_client(requester)
    warm(client)
    cache.delete_many([auth_cache.ALL_STAMP, auth_cache.USER_STAMP.format(requester.pk)])
    with django_assert_num_queries(1):
        assert client.get(ME).status_code == 200
    with django_assert_num_queries(0):
        assert client.get(ME).status_code == 200


UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_without_redis_every_request_reads_the_database_and_is_throttled(requester, settings, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.throttling import UserRateThrottle

    client = api_client(requester)
    warm(client)
    assert auth_cache._entries
    settings.CACHES = {"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": UNREACHABLE_REDIS}}
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min"})
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(ME).status_code == 200
        assert len(queries.captured_queries) == 1
        assert not auth_cache._entries  # an outage drops the copies: none outlives it
    assert client.get(ME).status_code == 429  # the throttle counts in process memory meanwhile


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_changes_in_one_server_process_apply_at_once_in_the_other():
    org = make_org("ac-org")
    admin = make_user(org, "admin@ac.test", roles=["org_admin"])
    make_role(org, "role_admin", ["roles.manage"])
    user = make_user(org, "user@ac.test", roles=["requester", "role_admin"])
    leaver = make_user(org, "leaver@ac.test")
    role = Role.objects.get(organization=org, slug="role_admin")

    def bearer(who) -> dict:
        return {"Authorization": f"Bearer {RefreshToken.for_user(who).access_token}"}

    with daphne_servers(2, API_THROTTLE_RATE="100000/min") as (a, b):
        admin_h, user_h, leaver_h = bearer(admin), bearer(user), bearer(leaver)
        for base in (a, b, a, b):  # both processes hold copies of both users
            assert httpx.get(f"{base}{ME}", headers=user_h).status_code == 200
            assert httpx.get(f"{base}{ME}", headers=leaver_h).status_code == 200
        assert httpx.post(f"{b}{ROLES}", json={}, headers=user_h).status_code == 400

        # A role removed through A: B refuses what it granted on the very next request.
        r = httpx.delete(f"{a}{ROLES}{role.pk}/members/{user.pk}/", headers=admin_h)
        assert r.status_code == 204, r.text
        assert httpx.post(f"{b}{ROLES}", json={}, headers=user_h).status_code == 403
        assert httpx.get(f"{b}{ME}", headers=user_h).json()["roles"] == ["requester"]

        # Deactivated through B: A answers 401 at once.
        assert httpx.delete(f"{b}/api/v1/users/{leaver.pk}/", headers=admin_h).status_code == 204
        r = httpx.get(f"{a}{ME}", headers=leaver_h)
        assert r.status_code == 401 and r.json()["error"]["message"] == "User not found or inactive."

        # Every session ended through A (logout-all): the access token dies in B at once.
        login = httpx.post(f"{a}/api/v1/auth/login/", json={"email": user.email, "password": PASSWORD}).json()
        session_h = {"Authorization": f"Bearer {login['access']}"}
        assert httpx.get(f"{b}{ME}", headers=session_h).status_code == 200
        assert httpx.post(f"{a}/api/v1/auth/logout/all/", headers=session_h).status_code == 200
        r = httpx.get(f"{b}{ME}", headers=session_h)
        assert r.status_code == 401 and r.json()["error"]["message"] == "Token has been revoked."
