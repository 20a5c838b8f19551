"""The user and role admin call accounts.services, so the admin does what the API does (issue 13.3)."""

import pytest
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from auditlogs.models import AuditLog
from core.testing import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    assert client.login(username=admin_user.email, password=PASSWORD)
    return client


def _user_form(user: User, **changes) -> dict:
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "title": user.title,
        "department": str(user.department_id or ""),
        "manager": str(user.manager_id or ""),
        "is_staff": "on" if user.is_staff else "",
        "is_active": "on" if user.is_active else "",
        "role_memberships-TOTAL_FORMS": "0",
        "role_memberships-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_unticking_is_active_deactivates_like_the_api(staff_client, requester):
    refresh = RefreshToken.for_user(requester)

    response = staff_client.post(f"/admin/accounts/user/{requester.pk}/change/", _user_form(requester, is_active=""))

    assert response.status_code == 302, response.content[:2000]
    requester.refresh_from_db()
    assert requester.is_active is False and requester.deactivated_at is not None
    actions = list(AuditLog.objects.filter(target_id=str(requester.pk)).values_list("action", flat=True))
    assert "user.deactivated" in actions and "user.updated" not in actions
    token = OutstandingToken.objects.get(jti=refresh["jti"])
    assert hasattr(token, "blacklistedtoken")  # the refresh token is dead
    assert api_refresh_refused(str(refresh))


def api_refresh_refused(refresh: str) -> bool:
    from rest_framework.test import APIClient

    return APIClient().post("/api/v1/auth/refresh/", {"refresh": refresh}, format="json").status_code == 401


def test_ticking_is_active_again_reactivates(staff_client, requester):
    staff_client.post(f"/admin/accounts/user/{requester.pk}/change/", _user_form(requester, is_active=""))
    requester.refresh_from_db()

    response = staff_client.post(f"/admin/accounts/user/{requester.pk}/change/", _user_form(requester, is_active="on"))

    assert response.status_code == 302
    requester.refresh_from_db()
    assert requester.is_active and requester.deactivated_at is None


def test_deactivating_oneself_is_refused_on_the_form(staff_client, admin_user):
    response = staff_client.post(f"/admin/accounts/user/{admin_user.pk}/change/", _user_form(admin_user, is_active=""))

    assert response.status_code == 200
    assert "You cannot deactivate yourself." in str(response.context["adminform"].form.non_field_errors())
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_a_manager_loop_of_one_is_a_form_error(staff_client, requester):
    response = staff_client.post(
        f"/admin/accounts/user/{requester.pk}/change/", _user_form(requester, manager=str(requester.pk))
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["manager"] == ["A user cannot be their own manager."]
    requester.refresh_from_db()
    assert requester.manager_id is None


def test_users_are_deactivated_not_deleted(staff_client, requester, org):
    assert staff_client.post(f"/admin/accounts/user/{requester.pk}/delete/", {"post": "yes"}).status_code == 403
    response = staff_client.post(
        "/admin/accounts/user/", {"action": "deactivate_selected", "_selected_action": [str(requester.pk)]}
    )
    assert response.status_code == 302
    requester.refresh_from_db()
    assert requester.is_active is False and requester.deactivated_at is not None


def test_email_is_not_editable_after_creation(staff_client, org):
    user = make_user(org, "fixed@acme-test.test")
    staff_client.post(f"/admin/accounts/user/{user.pk}/change/", _user_form(user, email="other@acme-test.test"))
    user.refresh_from_db()
    assert user.email == "fixed@acme-test.test"


def test_role_inline_adds_and_removes_through_the_role_services(staff_client, requester, org):
    from accounts.models import Role, RoleMembership

    auditor = Role.objects.get(organization=org, slug="auditor")
    add = _user_form(
        requester,
        **{
            "role_memberships-TOTAL_FORMS": "2",
            "role_memberships-INITIAL_FORMS": "1",
            "role_memberships-0-id": str(requester.role_memberships.get().pk),
            "role_memberships-0-user": str(requester.pk),
            "role_memberships-0-role": str(requester.role_memberships.get().role_id),
            "role_memberships-0-DELETE": "on",
            "role_memberships-1-user": str(requester.pk),
            "role_memberships-1-role": str(auditor.pk),
        },
    )
    response = staff_client.post(f"/admin/accounts/user/{requester.pk}/change/", add)

    assert response.status_code == 302, response.content[:3000]
    assert list(RoleMembership.objects.filter(user=requester).values_list("role__slug", flat=True)) == ["auditor"]
    actions = list(
        AuditLog.objects.filter(action__startswith="role.member").order_by("sequence").values_list("action", "changes")
    )
    assert actions[-2:] == [
        ("role.member_removed", {"user": [requester.email, None]}),
        ("role.member_added", {"user": [None, requester.email]}),
    ]


def test_admin_password_page_goes_through_password_set(
    staff_client, admin_user, requester, django_capture_on_commit_callbacks
):
    from django.core import mail

    from accounts.models import SecurityPolicy

    SecurityPolicy.objects.create(organization=requester.organization, password_min_length=16)
    url = f"/admin/accounts/user/{requester.pk}/password/"
    before = User.objects.get(pk=requester.pk).password
    weak = staff_client.post(url, {"password1": "Short-Pass-2031", "password2": "Short-Pass-2031"})
    assert weak.status_code == 200 and "at least 16 characters" in weak.content.decode()
    assert User.objects.get(pk=requester.pk).password == before
    assert not AuditLog.objects.filter(action="auth.password_set").exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = staff_client.post(url, {"password1": "Long-Enough-Pass-2031", "password2": "Long-Enough-Pass-2031"})
    assert done.status_code == 302
    assert User.objects.get(pk=requester.pk).check_password("Long-Enough-Pass-2031")
    log = AuditLog.objects.get(action="auth.password_set")
    assert log.actor_id == admin_user.pk and log.target_id == str(requester.pk)
    assert [m.subject for m in mail.outbox] == ["Your password was changed"]
