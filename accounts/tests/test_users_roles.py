import itertools

import pytest

from accounts.models import Role, RoleMembership, User
from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_user

pytestmark = pytest.mark.django_db


def test_requester_cannot_write_users_or_roles(requester, admin_user):
    client = api_client(requester)
    assert client.get("/api/v1/users/").status_code == 200
    assert client.post("/api/v1/users/", {"email": "x@y.test"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/users/{admin_user.pk}/", {"title": "Boss"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/users/{admin_user.pk}/").status_code == 403
    assert client.post("/api/v1/roles/", {"slug": "x", "name": "X"}, format="json").status_code == 403
    role = Role.objects.get(organization=requester.organization, slug="org_admin")
    response = client.post(f"/api/v1/roles/{role.pk}/members/", {"user": str(requester.pk)}, format="json")
    assert response.status_code == 403
    assert error_code(response) == "permission_denied"
    assert not User.objects.filter(email="x@y.test").exists()
    assert not RoleMembership.objects.filter(role=role, user=requester).exists()
    admin_user.refresh_from_db()
    assert admin_user.title == "" and admin_user.is_active


def test_admin_creates_user_with_roles_and_manager(admin_user, requester):
    response = api_client(admin_user).post(
        "/api/v1/users/",
        {
            "email": "New@Acme-Test.test",
            "first_name": "New",
            "password": "Strong-Pass-2026!",
            "manager": str(requester.pk),
            "role_slugs": ["requester", "auditor"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "new@acme-test.test"
    assert body["roles"] == ["auditor", "requester"]
    assert "password" not in body
    user = User.objects.get(email="new@acme-test.test")
    assert user.organization_id == admin_user.organization_id and user.manager_id == requester.pk
    assert AuditLog.objects.filter(action="user.created", target_id=str(user.pk)).exists()


def test_user_create_validation(admin_user):
    client = api_client(admin_user)
    dup = client.post("/api/v1/users/", {"email": admin_user.email}, format="json")
    assert dup.status_code == 400 and "email" in dup.json()["error"]["details"]
    weak = client.post("/api/v1/users/", {"email": "w@x.test", "password": "123"}, format="json")
    assert weak.status_code == 400 and "password" in weak.json()["error"]["details"]
    bad_role = client.post("/api/v1/users/", {"email": "r@x.test", "role_slugs": ["nope"]}, format="json")
    assert bad_role.status_code == 400
    assert not User.objects.filter(email__in=["w@x.test", "r@x.test"]).exists()


def test_user_update_ignores_read_only_fields(admin_user, requester):
    response = api_client(admin_user).patch(
        f"/api/v1/users/{requester.pk}/",
        {"title": "Lead", "email": "changed@x.test", "is_active": False, "organization": None},
        format="json",
    )
    assert response.status_code == 200
    requester.refresh_from_db()
    assert requester.title == "Lead"
    assert requester.email == "req@acme-test.test" and requester.is_active and requester.organization_id


def test_deactivate_and_reactivate(admin_user, requester):
    client = api_client(admin_user)
    assert client.delete(f"/api/v1/users/{requester.pk}/").status_code == 204
    requester.refresh_from_db()
    assert not requester.is_active and requester.deactivated_at
    assert client.get(f"/api/v1/users/{requester.pk}/").json()["is_active"] is False
    assert client.post(f"/api/v1/users/{requester.pk}/reactivate/").json()["is_active"] is True
    self_delete = client.delete(f"/api/v1/users/{admin_user.pk}/")
    assert self_delete.status_code == 409
    assert AuditLog.objects.filter(action="user.deactivated", target_id=str(requester.pk)).exists()


def test_roles_crud_and_membership(admin_user, requester):
    client = api_client(admin_user)
    created = client.post(
        "/api/v1/roles/",
        {"slug": "finance_approver", "name": "Finance", "permissions": ["reports.view"]},
        format="json",
    )
    assert created.status_code == 201
    role_id = created.json()["id"]
    unknown = client.post(
        "/api/v1/roles/", {"slug": "bad", "name": "Bad", "permissions": ["rocket.launch"]}, format="json"
    )
    assert unknown.status_code == 400 and "permissions" in unknown.json()["error"]["details"]
    added = client.post(f"/api/v1/roles/{role_id}/members/", {"user": str(requester.pk)}, format="json")
    assert added.status_code == 201
    assert client.get(f"/api/v1/roles/{role_id}/members/").json()["results"][0]["email"] == requester.email
    requester_fresh = User.objects.get(pk=requester.pk)
    assert requester_fresh.has_code("reports.view")
    assert client.delete(f"/api/v1/roles/{role_id}/members/{requester.pk}/").status_code == 204
    assert not User.objects.get(pk=requester.pk).has_code("reports.view")
    builtin = Role.objects.get(organization=admin_user.organization, slug="org_admin")
    assert client.delete(f"/api/v1/roles/{builtin.pk}/").status_code == 409
    assert client.delete(f"/api/v1/roles/{role_id}/").status_code == 204
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"role.created", "role.member_added", "role.member_removed", "role.deleted"} <= actions


def test_builtin_roles_created_per_org(org):
    slugs = set(Role.objects.filter(organization=org).values_list("slug", flat=True))
    assert slugs == {"org_admin", "workflow_designer", "requester", "auditor"}


def test_users_list_query_count_constant(admin_user, org, django_assert_max_num_queries):
    for i in range(60):
        make_user(org, f"bulk{i}@acme-test.test")
    client = api_client(admin_user)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller is cached from here on (both warm)
    counts = []
    for size in (1, 50):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/api/v1/users/?page_size={size}").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts == [3, 3], counts  # count, page, their roles (prefetched); the caller: cached


def test_users_manage_alone_is_not_org_admin(org):
    """Issue 19.2: the holder of only ``users.manage`` neither creates an org admin nor makes themselves staff."""
    from core.testing import make_role

    make_role(org, "people_ops", ["users.manage"])
    make_role(org, "people_ops_plus", ["users.manage", "requests.create"])
    hr = make_user(org, "hr@acme-test.test", roles=["people_ops"])
    hr_plus = make_user(org, "hr-plus@acme-test.test", roles=["people_ops_plus"])
    audit_rows = AuditLog.objects.count()

    create = api_client(hr).post(
        "/api/v1/users/", {"email": "boss@acme-test.test", "role_slugs": ["org_admin"]}, format="json"
    )
    assert create.status_code == 403 and error_code(create) == "cannot_grant"
    own_staff = api_client(hr).patch(f"/api/v1/users/{hr.pk}/", {"is_staff": True}, format="json")
    assert own_staff.status_code == 403 and error_code(own_staff) == "cannot_grant"
    # Holding every code of a role is not enough: assigning roles needs roles.manage.
    subset = api_client(hr_plus).post(
        "/api/v1/users/", {"email": "req@x.acme-test.test", "role_slugs": ["requester"]}, format="json"
    )
    assert subset.status_code == 403 and error_code(subset) == "cannot_grant"

    assert not User.objects.filter(email__in=["boss@acme-test.test", "req@x.acme-test.test"]).exists()
    hr.refresh_from_db()
    assert not hr.is_staff
    assert AuditLog.objects.count() == audit_rows
    # What users.manage is for still works: a plain user, no roles, no flags.
    plain = api_client(hr).post("/api/v1/users/", {"email": "plain@acme-test.test"}, format="json")
    assert plain.status_code == 201, plain.json()


def test_users_search_matches_every_word_in_names_and_email_within_the_org(
    admin_user, org, other_org, django_assert_num_queries
):
    make_user(org, "alice.anders@acme-test.test", first_name="Alice", last_name="Anders")
    make_user(org, "al@acme-test.test", first_name="Alan", last_name="Brown")
    make_user(org, "zed@acme-test.test", first_name="Zed", last_name="Alison")
    make_user(other_org, "alice@other-test.test", first_name="Alice", last_name="Other")
    client = api_client(admin_user)

    def emails(search):
        response = client.get("/api/v1/users/", {"search": search})
        assert response.status_code == 200
        return sorted(u["email"] for u in response.json()["results"])

    assert emails("ali") == ["alice.anders@acme-test.test", "zed@acme-test.test"]  # first name, last name
    assert emails("ALICE anders") == ["alice.anders@acme-test.test"]  # every word, any case
    assert emails("al@") == ["al@acme-test.test"]  # e-mail
    assert emails("other") == []  # another organization's people never
    with django_assert_num_queries(3):  # count, page, their roles (prefetched); the caller: cached
        response = client.get("/api/v1/users/", {"search": "acme a c m e nomatch"})  # past the fifth word: ignored
    assert response.json()["count"] == 4
    too_long = client.get("/api/v1/users/", {"search": "x" * 101})
    assert too_long.status_code == 400 and "search" in too_long.json()["error"]["details"]


@pytest.mark.parametrize("length", [2, 3])
def test_manager_cycles_are_refused_and_change_nothing(admin_user, length):
    """mark manages alice; alice managing mark (or a longer loop) is a 400 naming ``manager`` (issue 19.8)."""
    org = admin_user.organization
    people = [make_user(org, f"p{i}-{length}@acme-test.test") for i in range(length)]
    client = api_client(admin_user)
    # people[0] manages people[1], which manages people[2]...
    for boss, report in itertools.pairwise(people):
        response = client.patch(f"/api/v1/users/{report.pk}/", {"manager": str(boss.pk)}, format="json")
        assert response.status_code == 200, response.content
    audit_rows = AuditLog.objects.count()
    response = client.patch(f"/api/v1/users/{people[0].pk}/", {"manager": str(people[-1].pk)}, format="json")
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert "cycle" in response.json()["error"]["details"]["manager"][0]
    people[0].refresh_from_db()
    assert people[0].manager_id is None
    assert AuditLog.objects.count() == audit_rows
