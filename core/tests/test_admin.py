"""Admin scoping: a staff user who is not a superuser sees and edits only their organization."""

import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import User
from auditlogs.models import AuditLog
from core.admin import ServiceRefused, SoftDeleteAdmin
from core.testing import PASSWORD, make_department, make_user
from core.tests.project_apps import project_apps
from organizations.models import Department
from workflows.models import WorkflowDefinition

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    assert client.login(username=admin_user.email, password=PASSWORD)
    return client


def test_staff_sees_only_own_org_rows(staff_client, org, other_org):
    make_department(org, "Ours")
    make_department(other_org, "Theirs")
    page = staff_client.get("/admin/organizations/department/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ours" in html and "Theirs" not in html


def test_staff_cannot_open_other_org_row(staff_client, other_org):
    theirs = make_department(other_org, "Theirs")
    response = staff_client.get(f"/admin/organizations/department/{theirs.pk}/change/")
    assert response.status_code in (302, 404)
    assert response.status_code != 200


def test_foreign_key_choices_are_scoped(staff_client, org, other_org):
    make_user(other_org, "stranger@other.test")
    make_user(org, "colleague@acme-test.test")
    html = staff_client.get("/admin/organizations/department/add/").content.decode()
    assert "colleague@acme-test.test" in html
    assert "stranger@other.test" not in html


def test_staff_add_is_forced_into_own_org_and_audited(staff_client, org, other_org):
    response = staff_client.post(
        "/admin/organizations/department/add/", {"name": "Via Admin", "organization": str(other_org.pk)}
    )
    assert response.status_code == 302
    dept = Department.objects.get(name="Via Admin")
    assert dept.organization_id == org.pk
    row = AuditLog.objects.get(action="department.created", target_id=str(dept.pk))
    # The same row the API writes: the admin calls department_create.
    assert row.changes == {"name": [None, "Via Admin"], "parent_id": [None, None], "head_id": [None, None]}


def test_staff_user_admin_hides_platform_fields(staff_client, requester):
    html = staff_client.get(f"/admin/accounts/user/{requester.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in html
    assert 'name="organization"' not in html


def test_requester_without_code_has_no_admin(client, org):
    user = make_user(org, "staffer@acme-test.test", roles=["requester"], is_staff=True)
    assert client.login(username=user.email, password=PASSWORD)
    assert client.get("/admin/organizations/department/").status_code == 403


def _admin_request(user, path="/admin/"):
    request = RequestFactory().post(path)
    request.user = User.objects.get(pk=user.pk)
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_soft_delete_hides_row_and_admin_restores_through_the_services(org, admin_user):
    definition = WorkflowDefinition.objects.create(organization=org, key="trip", name="Trip")
    model_admin = admin.site._registry[WorkflowDefinition]
    assert isinstance(model_admin, SoftDeleteAdmin)
    request = _admin_request(admin_user)
    model_admin.delete_model(request, definition)
    assert not WorkflowDefinition.objects.filter(pk=definition.pk).exists()
    assert WorkflowDefinition.all_objects.filter(pk=definition.pk).exists()

    listed = model_admin.get_queryset(request)
    assert definition.pk in set(listed.values_list("pk", flat=True))
    model_admin.restore_selected(request, listed.filter(pk=definition.pk))
    assert WorkflowDefinition.objects.filter(pk=definition.pk).exists()
    # the API's audit actions: the admin called workflows' services
    assert list(AuditLog.objects.filter(target_id=str(definition.pk)).values_list("action", flat=True)) == [
        "workflow.deleted",
        "workflow.restored",
    ]


def test_admin_restore_refused_by_the_service_changes_nothing(org, admin_user):
    deleted = WorkflowDefinition.objects.create(organization=org, key="trip", name="Trip")
    model_admin = admin.site._registry[WorkflowDefinition]
    model_admin.delete_model(_admin_request(admin_user), deleted)
    WorkflowDefinition.objects.create(organization=org, key="trip", name="Trip again")

    with pytest.raises(ServiceRefused) as refused:
        model_admin.restore_selected(_admin_request(admin_user), WorkflowDefinition.all_objects.filter(pk=deleted.pk))
    assert refused.value.error.code == "key_taken"
    assert WorkflowDefinition.all_objects.get(pk=deleted.pk).deleted_at is not None
    assert not AuditLog.objects.filter(target_id=str(deleted.pk), action="workflow.restored").exists()


def test_a_soft_delete_admin_without_services_refuses_to_write(org, admin_user):
    live = WorkflowDefinition.objects.create(organization=org, key="trip", name="Trip")
    deleted = WorkflowDefinition.objects.create(organization=org, key="old", name="Old", deleted_at=timezone.now())
    bare = SoftDeleteAdmin(WorkflowDefinition, admin.site)
    with pytest.raises(NotImplementedError):
        bare.delete_model(_admin_request(admin_user), live)
    with pytest.raises(NotImplementedError):
        bare.restore_selected(_admin_request(admin_user), WorkflowDefinition.all_objects.filter(pk=deleted.pk))
    assert WorkflowDefinition.objects.filter(pk=live.pk).exists()
    assert WorkflowDefinition.all_objects.get(pk=deleted.pk).deleted_at is not None


def test_every_writable_admin_writes_through_a_service():
    """The base admin never writes a model: a page that can add, change or delete names its service."""
    from core.admin import OrgScopedAdmin

    hooks = {
        "add": ("create_via_service",),
        "change": ("update_via_service",),
        "delete": ("delete_via_service",),
    }
    superuser = User(is_superuser=True, is_active=True, is_staff=True)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    missing = []
    ours = set(project_apps())
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ours:
            continue  # the platform's own tools (token blacklist, beat schedules): superusers only
        assert isinstance(model_admin, OrgScopedAdmin), f"{model.__name__} is not scoped"
        cls = type(model_admin)
        checks = {
            "add": model_admin.has_add_permission(request),
            "change": model_admin.has_change_permission(request),
            "delete": model_admin.has_delete_permission(request),
        }
        own = {"add": "save_model", "change": "save_model", "delete": "delete_model"}
        for what, allowed in checks.items():
            if not allowed:
                continue
            overridden = any(getattr(cls, h) is not getattr(OrgScopedAdmin, h) for h in hooks[what])
            overridden = overridden or getattr(cls, own[what]) is not getattr(OrgScopedAdmin, own[what])
            if not overridden:
                missing.append(f"{model.__name__}: {what}")
    assert not missing, missing
