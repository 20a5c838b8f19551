import pytest

from auditlogs.models import AuditLog
from core.testing import api_client, error_code, make_department, make_user
from organizations.models import Department, Holiday

pytestmark = pytest.mark.django_db


def test_current_organization_read_by_member_write_needs_org_manage(org, requester, admin_user):
    assert api_client(requester).get("/api/v1/organizations/current/").json()["slug"] == "acme-test"
    denied = api_client(requester).patch("/api/v1/organizations/current/", {"name": "Hacked"}, format="json")
    assert denied.status_code == 403
    assert error_code(denied) == "permission_denied"
    org.refresh_from_db()
    assert org.name == "Acme Test"
    ok = api_client(admin_user).patch(
        "/api/v1/organizations/current/", {"name": "Acme Renamed", "timezone": "Europe/Berlin"}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json()["name"] == "Acme Renamed"
    assert AuditLog.objects.filter(action="organization.updated", organization=org).exists()


def test_organization_rejects_bad_calendar(admin_user, org):
    client = api_client(admin_user)
    bad_tz = client.patch("/api/v1/organizations/current/", {"timezone": "Mars/Base"}, format="json")
    assert bad_tz.status_code == 400
    assert "timezone" in bad_tz.json()["error"]["details"]
    bad_days = client.patch("/api/v1/organizations/current/", {"work_days": [0, 9]}, format="json")
    assert bad_days.status_code == 400
    bad_hours = client.patch(
        "/api/v1/organizations/current/", {"work_start": "18:00", "work_end": "09:00"}, format="json"
    )
    assert bad_hours.status_code == 400
    org.refresh_from_db()
    assert org.timezone == "UTC" and org.work_days == [0, 1, 2, 3, 4]


def test_department_crud_and_tree(admin_user, org):
    client = api_client(admin_user)
    parent = client.post("/api/v1/departments/", {"name": "Engineering", "head": str(admin_user.pk)}, format="json")
    assert parent.status_code == 201, parent.json()
    child = client.post("/api/v1/departments/", {"name": "Platform", "parent": parent.json()["id"]}, format="json")
    assert child.status_code == 201
    cycle = client.patch(f"/api/v1/departments/{parent.json()['id']}/", {"parent": child.json()["id"]}, format="json")
    assert cycle.status_code == 400
    assert "parent" in cycle.json()["error"]["details"]
    duplicate = client.post("/api/v1/departments/", {"name": "Engineering"}, format="json")
    assert duplicate.status_code == 400
    in_use = client.delete(f"/api/v1/departments/{parent.json()['id']}/")
    assert in_use.status_code == 409
    assert client.delete(f"/api/v1/departments/{child.json()['id']}/").status_code == 204
    assert list(Department.objects.values_list("name", flat=True)) == ["Engineering"]
    actions = set(AuditLog.objects.filter(organization=org).values_list("action", flat=True))
    assert {"department.created", "department.deleted"} <= actions


def test_holidays_crud(admin_user, requester):
    client = api_client(admin_user)
    created = client.post("/api/v1/holidays/", {"date": "2026-12-25", "name": "Christmas"}, format="json")
    assert created.status_code == 201
    assert client.post("/api/v1/holidays/", {"date": "2026-12-25", "name": "Again"}, format="json").status_code == 400
    assert api_client(requester).get("/api/v1/holidays/").json()["count"] == 1
    denied = api_client(requester).post("/api/v1/holidays/", {"date": "2026-12-26", "name": "X"}, format="json")
    assert denied.status_code == 403
    assert Holiday.objects.count() == 1


def test_other_org_objects_are_404(org, other_org, admin_user, other_admin):
    dept = make_department(other_org, "Secret")
    holiday = api_client(other_admin).post("/api/v1/holidays/", {"date": "2027-01-01", "name": "NY"}, format="json")
    theirs = make_user(other_org, "them@other.test")
    client = api_client(admin_user)
    for url in (
        f"/api/v1/departments/{dept.pk}/",
        f"/api/v1/holidays/{holiday.json()['id']}/",
        f"/api/v1/users/{theirs.pk}/",
        f"/api/v1/roles/{theirs.role_memberships.first().role_id}/",
    ):
        for method in ("get", "patch", "delete"):
            response = getattr(client, method)(url, {}, format="json")
            assert response.status_code == 404, (method, url, response.status_code)
            assert error_code(response) == "not_found"
    assert Department.objects.filter(pk=dept.pk).exists()
    theirs.refresh_from_db()
    assert theirs.is_active
    # and their rows never appear in our lists
    assert all(d["name"] != "Secret" for d in client.get("/api/v1/departments/").json()["results"])
    assert all(u["email"] != theirs.email for u in client.get("/api/v1/users/?page_size=100").json()["results"])


def test_cannot_point_at_other_org_rows(admin_user, other_org):
    foreign_dept = make_department(other_org, "Foreign")
    response = api_client(admin_user).post(
        "/api/v1/departments/", {"name": "Mine", "parent": str(foreign_dept.pk)}, format="json"
    )
    assert response.status_code == 400
    assert "parent" in response.json()["error"]["details"]


def test_user_without_organization_gets_403(db):
    platform = make_user(None, "root@platform.test", is_superuser=True, is_staff=True)
    response = api_client(platform).get("/api/v1/departments/")
    assert response.status_code == 403
    assert error_code(response) == "no_organization"
