"""Every foundation action writes one chained row, with actor, target and changes (docs/audit.md).

The engine, workflows, notifications and SLA parts test their own actions.
"""

import datetime as dt

import pytest

from accounts.models import Role, User
from auditlogs.models import AuditLog
from auditlogs.verify import verify_chain
from core.testing import PASSWORD, api_client, make_department, make_user
from organizations.models import Department, Holiday

pytestmark = pytest.mark.django_db


def last(action, organization=None, **filters):
    qs = AuditLog.objects.filter(action=action, **filters)
    if organization is not None:
        qs = qs.filter(chain=str(organization.pk))
    rows = list(qs.order_by("-id")[:2])
    assert rows, f"no {action} row"
    return rows[0]


def new_rows(since_id):
    return list(AuditLog.objects.filter(id__gt=since_id).order_by("id").values_list("action", flat=True))


def mark():
    latest = AuditLog.objects.order_by("-id").first()
    return latest.id if latest else 0


@pytest.fixture(autouse=True)
def _chain_still_verifies(org):
    yield
    assert verify_chain(organization=org)["ok"]


def test_login_logout_and_failed_login(org, requester):
    start = mark()
    client = api_client()
    tokens = client.post(
        "/api/v1/auth/login/", {"email": requester.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.4"
    ).json()
    row = last("user.login", org)
    assert (row.actor_id, row.target_id, row.ip) == (requester.pk, str(requester.pk), "198.51.100.4")
    assert row.request_id and row.user_agent == ""

    failed = client.post(
        "/api/v1/auth/login/", {"email": requester.email, "password": "wrong"}, HTTP_USER_AGENT="curl/8"
    )
    assert failed.status_code == 401
    row = last("user.login_failed", org)
    assert row.actor_id is None and row.target_id == str(requester.pk) and row.user_agent == "curl/8"

    unknown = client.post("/api/v1/auth/login/", {"email": "ghost@nowhere.test", "password": "x"})
    assert unknown.status_code == 401
    row = last("user.login_failed")
    assert row.chain == "platform" and row.target_repr == "ghost@nowhere.test"

    authed = api_client(requester)
    assert authed.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}).status_code == 204
    row = last("user.logout", org)
    assert row.actor_id == requester.pk
    assert new_rows(start) == ["user.login", "user.login_failed", "user.login_failed", "user.logout"]


def test_password_changed(org, requester):
    response = api_client(requester).post(
        "/api/v1/auth/password/change/", {"old_password": PASSWORD, "new_password": "An0ther-Long-Pass!"}
    )
    assert response.status_code == 204
    row = last("password.changed", org)
    assert row.actor_id == requester.pk and row.target_id == str(requester.pk)
    assert "password" not in str(row.changes).lower() or row.changes == {}


def test_password_change_refused_writes_nothing(org, requester):
    start = mark()
    response = api_client(requester).post(
        "/api/v1/auth/password/change/", {"old_password": "wrong", "new_password": "An0ther-Long-Pass!"}
    )
    assert response.status_code == 400
    assert new_rows(start) == []


def test_user_created_updated_deactivated(org, admin_user):
    client = api_client(admin_user)
    dept = make_department(org, "Finance")
    start = mark()
    created = client.post(
        "/api/v1/users/",
        {
            "email": "new@acme-test.test",
            "first_name": "Nia",
            "password": "A-Strong-Pass-2026",
            "role_slugs": ["auditor"],
        },
    )
    assert created.status_code == 201, created.content
    user_id = created.json()["id"]
    row = last("user.created", org)
    assert row.actor_id == admin_user.pk and row.target_id == user_id and row.target_type == "accounts.user"
    assert row.changes["email"] == [None, "new@acme-test.test"] and row.changes["first_name"] == [None, "Nia"]
    assert "password" not in row.changes

    updated = client.patch(f"/api/v1/users/{user_id}/", {"title": "Controller", "department": str(dept.pk)})
    assert updated.status_code == 200
    row = last("user.updated", org)
    assert row.changes == {"title": ["", "Controller"], "department_id": [None, str(dept.pk)]}

    assert client.delete(f"/api/v1/users/{user_id}/").status_code == 204
    row = last("user.deactivated", org)
    assert row.changes == {"is_active": [True, False]} and row.target_id == user_id
    assert new_rows(start) == ["user.created", "role.member_added", "user.updated", "user.deactivated"]


def test_role_created_updated_deleted_and_members(org, admin_user, requester):
    client = api_client(admin_user)
    start = mark()
    role = client.post("/api/v1/roles/", {"slug": "finance_approver", "name": "Finance", "permissions": []}).json()
    row = last("role.created", org)
    assert row.target_id == role["id"] and row.changes["slug"] == [None, "finance_approver"]

    client.patch(f"/api/v1/roles/{role['id']}/", {"permissions": ["requests.view_all"]})
    row = last("role.updated", org)
    assert row.changes == {"permissions": [[], ["requests.view_all"]]}

    assert client.post(f"/api/v1/roles/{role['id']}/members/", {"user": str(requester.pk)}).status_code == 201
    row = last("role.member_added", org)
    assert row.target_id == role["id"] and row.changes == {"user": [None, requester.email]}

    assert client.delete(f"/api/v1/roles/{role['id']}/members/{requester.pk}/").status_code == 204
    row = last("role.member_removed", org)
    assert row.changes == {"user": [requester.email, None]}

    assert client.delete(f"/api/v1/roles/{role['id']}/").status_code == 204
    row = last("role.deleted", org)
    assert row.target_id == role["id"] and row.target_repr
    assert not Role.objects.filter(pk=role["id"]).exists()
    assert new_rows(start) == [
        "role.created",
        "role.updated",
        "role.member_added",
        "role.member_removed",
        "role.deleted",
    ]


def test_department_changes(org, admin_user, requester):
    client = api_client(admin_user)
    start = mark()
    dept = client.post("/api/v1/departments/", {"name": "Ops"}).json()
    assert last("department.created", org).changes["name"] == [None, "Ops"]
    client.patch(f"/api/v1/departments/{dept['id']}/", {"name": "Operations", "head": str(requester.pk)})
    assert last("department.updated", org).changes == {
        "name": ["Ops", "Operations"],
        "head_id": [None, str(requester.pk)],
    }
    assert client.delete(f"/api/v1/departments/{dept['id']}/").status_code == 204
    assert last("department.deleted", org).target_id == dept["id"]
    assert new_rows(start) == ["department.created", "department.updated", "department.deleted"]


def test_organization_changes(org, admin_user):
    response = api_client(admin_user).patch(
        "/api/v1/organizations/current/", {"name": "Acme Renamed", "work_days": [0, 1, 2, 3]}
    )
    assert response.status_code == 200, response.content
    row = last("organization.updated", org)
    assert row.changes == {"name": ["Acme Test", "Acme Renamed"], "work_days": [[0, 1, 2, 3, 4], [0, 1, 2, 3]]}
    assert row.actor_id == admin_user.pk and row.target_id == str(org.pk)
    assert AuditLog.objects.filter(chain=str(org.pk), action="organization.created", sequence=1).exists()


def test_holiday_changes(org, admin_user):
    client = api_client(admin_user)
    start = mark()
    holiday = client.post("/api/v1/holidays/", {"date": "2026-12-25", "name": "Christmas"}).json()
    assert last("holiday.created", org).changes == {"date": [None, "2026-12-25"], "name": [None, "Christmas"]}
    client.patch(f"/api/v1/holidays/{holiday['id']}/", {"name": "Xmas"})
    assert last("holiday.updated", org).changes == {"name": ["Christmas", "Xmas"]}
    assert client.delete(f"/api/v1/holidays/{holiday['id']}/").status_code == 204
    assert last("holiday.deleted", org).target_id == holiday["id"]
    assert new_rows(start) == ["holiday.created", "holiday.updated", "holiday.deleted"]


def test_denied_write_writes_no_audit_row(org, requester):
    start = mark()
    response = api_client(requester).post("/api/v1/departments/", {"name": "Sneaky"})
    assert response.status_code == 403
    assert new_rows(start) == []
    assert not Department.objects.filter(name="Sneaky").exists()


# --- the admin ------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, admin_user):
    assert client.login(username=admin_user.email, password=PASSWORD)
    return client


def test_admin_add_change_delete_are_audited(org, admin_user, staff_client):
    start = mark()
    response = staff_client.post("/admin/organizations/holiday/add/", {"date": "2026-05-01", "name": "May Day"})
    assert response.status_code == 302, response.content[:2000]
    holiday = Holiday.objects.get(organization=org, date=dt.date(2026, 5, 1))
    row = last("holiday.created", org)
    assert row.actor_id == admin_user.pk and row.target_id == str(holiday.pk)
    assert row.changes == {"date": [None, "2026-05-01"], "name": [None, "May Day"]}  # as the API writes it
    assert row.ip == "127.0.0.1" and row.request_id

    response = staff_client.post(
        f"/admin/organizations/holiday/{holiday.pk}/change/", {"date": "2026-05-01", "name": "Labour Day"}
    )
    assert response.status_code == 302
    row = last("holiday.updated", org)
    assert row.changes == {"name": ["May Day", "Labour Day"]}  # no updated_at noise

    response = staff_client.post(f"/admin/organizations/holiday/{holiday.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    # holiday_delete records the row's last state, as for the API's DELETE
    assert last("holiday.deleted", org).changes == {"date": [None, "2026-05-01"], "name": [None, "Labour Day"]}
    assert new_rows(start) == ["holiday.created", "holiday.updated", "holiday.deleted"]


def test_admin_user_and_role_changes_are_audited(org, admin_user, staff_client, requester):
    response = staff_client.post(
        f"/admin/accounts/role/{Role.objects.get(organization=org, slug='auditor').pk}/change/",
        {"slug": "auditor", "name": "Auditors", "description": "", "permissions": '["audit.view"]'},
    )
    assert response.status_code == 302, response.content[:3000]
    row = last("role.updated", org)
    assert row.changes == {
        "name": ["Auditor", "Auditors"],
        "permissions": [["audit.view", "reports.view", "requests.view_all"], ["audit.view"]],
    }
    assert row.actor_id == admin_user.pk


def test_admin_log_is_read_only_even_for_a_superuser(org, client):
    superuser = make_user(None, "root@platform.test", is_superuser=True, is_staff=True)
    row = AuditLog.objects.filter(chain=str(org.pk)).first()
    assert client.login(username=superuser.email, password=PASSWORD)
    base = "/admin/auditlogs/auditlog/"
    assert client.get(base).status_code == 200
    page = client.get(f"{base}{row.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and "Delete" not in html.split("<form")[-1]
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{row.pk}/change/", {"action": "forged"}).status_code == 403
    assert client.get(f"{base}{row.pk}/delete/").status_code == 403
    assert client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(base, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert response.status_code in {200, 302, 403}
    assert AuditLog.objects.get(pk=row.pk).action == row.action
    assert AuditLog.objects.filter(chain=str(org.pk)).count() >= 1
    assert User.objects.filter(pk=superuser.pk).exists()


def test_admin_log_is_org_scoped_for_staff(org, other_org, other_admin, admin_user, staff_client):
    theirs = AuditLog.objects.filter(chain=str(other_org.pk)).first()
    listing = staff_client.get("/admin/auditlogs/auditlog/")
    assert listing.status_code == 200
    assert staff_client.get(f"/admin/auditlogs/auditlog/{theirs.pk}/change/").status_code in {302, 404}


def test_admin_user_creation_is_audited_without_the_password_hash(org, admin_user, staff_client):
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {"email": "viaadmin@acme-test.test", "password1": "A-Strong-Pass-2026", "password2": "A-Strong-Pass-2026"},
    )
    assert response.status_code == 302, response.content[:3000]
    user = User.objects.get(email="viaadmin@acme-test.test")
    assert user.organization_id == org.pk
    row = last("user.created", org)
    assert row.target_id == str(user.pk) and row.changes["email"] == [None, "viaadmin@acme-test.test"]
    assert "password" not in row.changes and user.check_password("A-Strong-Pass-2026")
    assert user.password not in str(row.changes)
    assert "updated_at" not in row.changes
