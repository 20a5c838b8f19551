"""The department admin is a client of organizations.services (issue 13.3)."""

import pytest

from auditlogs.models import AuditLog
from core.testing import PASSWORD, make_department, make_user
from organizations.models import Department

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    assert client.login(username=admin_user.email, password=PASSWORD)
    return client


def _change(client, dept, **data):
    return client.post(f"/admin/organizations/department/{dept.pk}/change/", {"name": dept.name, **data})


def test_admin_refuses_a_parent_cycle_on_the_form_and_saves_nothing(staff_client, org):
    a = make_department(org, "A")
    b = make_department(org, "B", parent=a)
    audited = AuditLog.objects.count()

    response = _change(staff_client, a, parent=str(b.pk))

    assert response.status_code == 200  # the form again, not a redirect
    assert response.context["adminform"].form.errors["parent"] == ["A department cannot be inside itself."]
    a.refresh_from_db()
    assert a.parent_id is None
    assert AuditLog.objects.count() == audited


def test_admin_change_is_the_services_change(staff_client, org, admin_user):
    a = make_department(org, "A")
    b = make_department(org, "B")

    response = _change(staff_client, b, parent=str(a.pk), head=str(admin_user.pk))

    assert response.status_code == 302
    b.refresh_from_db()
    assert (b.parent_id, b.head_id) == (a.pk, admin_user.pk)
    row = AuditLog.objects.filter(action="department.updated").latest("sequence")
    assert row.changes == {"parent_id": [None, str(a.pk)], "head_id": [None, str(admin_user.pk)]}


def test_admin_duplicate_name_is_a_form_error(staff_client, org):
    make_department(org, "Finance")
    response = staff_client.post("/admin/organizations/department/add/", {"name": "Finance"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["A department with this name already exists."]
    assert Department.objects.filter(organization=org, name="Finance").count() == 1


def test_admin_delete_of_a_department_in_use_is_refused_and_kept(staff_client, org):
    dept = make_department(org, "Busy")
    make_user(org, "member@acme-test.test", department=dept)
    audited = AuditLog.objects.count()

    response = staff_client.post(f"/admin/organizations/department/{dept.pk}/delete/", {"post": "yes"}, follow=True)

    assert "The department still has members or sub-departments." in response.content.decode()
    assert Department.objects.filter(pk=dept.pk).exists()
    assert AuditLog.objects.count() == audited


def test_admin_bulk_delete_is_all_or_nothing(staff_client, org):
    free = make_department(org, "Free")
    busy = make_department(org, "Busy")
    make_user(org, "member@acme-test.test", department=busy)

    response = staff_client.post(
        "/admin/organizations/department/",
        {"action": "delete_selected", "_selected_action": [str(free.pk), str(busy.pk)], "post": "yes"},
        follow=True,
    )

    assert "Nothing changed" in response.content.decode()
    assert Department.objects.filter(pk__in=[free.pk, busy.pk]).count() == 2
