"""Sessions, logout everywhere and lockout (issue 18.4)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import LoginSession, SecurityPolicy, User
from auditlogs.models import AuditLog
from core.testing import PASSWORD, api_client, error_code, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
SESSIONS = "/api/v1/auth/sessions/"


def login(email, password=PASSWORD, agent="pytest"):
    return api_client().post(
        LOGIN, {"email": email, "password": password}, format="json", HTTP_USER_AGENT=agent, REMOTE_ADDR="10.1.2.3"
    )


def bearer(access):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(token, agent="pytest"):
    return api_client().post(REFRESH, {"refresh": token}, format="json", HTTP_USER_AGENT=agent)


def test_list_my_sessions_with_their_device_and_times(requester, admin_user, django_assert_num_queries):
    laptop = login(requester.email, agent="Firefox on laptop").json()
    phone = login(requester.email, agent="Safari on phone").json()
    login(admin_user.email)  # someone else's session is never listed
    rotated = refresh(phone["refresh"], agent="Safari on phone 2").json()

    client = bearer(laptop["access"])
    with django_assert_num_queries(3):  # the user, the count, the page
        response = client.get(SESSIONS)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["user_agent"] for r in rows] == ["Safari on phone 2", "Firefox on laptop"]  # the last used first
    assert {r["ip"] for r in rows} == {"10.1.2.3", "127.0.0.1"}
    assert [r["current"] for r in rows] == [False, True]
    assert rows[0]["last_used_at"] > rows[0]["created_at"]
    assert {"id", "created_at", "last_used_at", "ip", "user_agent", "method", "current"} == set(rows[0])
    # The rotated session is still one session, and its access token says which.
    assert [r["current"] for r in bearer(rotated["access"]).get(SESSIONS).json()["results"]] == [True, False]


def test_end_one_session(requester):
    laptop = login(requester.email, agent="laptop").json()
    phone = login(requester.email, agent="phone").json()
    phone_id = next(r["id"] for r in bearer(laptop["access"]).get(SESSIONS).json()["results"] if not r["current"])

    response = bearer(laptop["access"]).delete(f"{SESSIONS}{phone_id}/")
    assert response.status_code == 204
    assert refresh(phone["refresh"]).status_code == 401  # the phone cannot refresh any more
    assert bearer(phone["access"]).get("/api/v1/auth/me/").status_code == 401  # nor use its access token
    # The laptop's access token died with the token version too; its refresh still works.
    renewed = refresh(laptop["refresh"]).json()
    assert [r["user_agent"] for r in bearer(renewed["access"]).get(SESSIONS).json()["results"]] == ["pytest"]
    assert AuditLog.objects.filter(action="auth.session_ended", actor=requester).count() == 1

    again = bearer(renewed["access"]).delete(f"{SESSIONS}{phone_id}/")
    assert again.status_code == 404 and error_code(again) == "not_found"


def test_another_users_session_is_a_404_and_stays(requester, admin_user):
    mine = login(requester.email).json()
    theirs = login(admin_user.email).json()
    their_id = LoginSession.objects.get(user=admin_user).pk
    response = bearer(mine["access"]).delete(f"{SESSIONS}{their_id}/")
    assert response.status_code == 404
    assert refresh(theirs["refresh"]).status_code == 200
    assert bearer(mine["access"]).delete(f"{SESSIONS}not-a-uuid/").status_code == 404


def test_logout_all_ends_every_session(requester):
    tokens = [login(requester.email, agent=f"device {i}").json() for i in range(3)]
    response = bearer(tokens[0]["access"]).post("/api/v1/auth/logout/all/")
    assert response.status_code == 200 and response.json() == {"ended": 3}
    for pair in tokens:
        assert refresh(pair["refresh"]).status_code == 401
        assert bearer(pair["access"]).get("/api/v1/auth/me/").status_code == 401
    assert not LoginSession.objects.filter(user=requester, ended_at__isnull=True).exists()
    assert AuditLog.objects.filter(action="auth.logout_all").count() == 1


def test_logout_ends_its_session(requester):
    pair = login(requester.email).json()
    assert (
        bearer(pair["access"]).post("/api/v1/auth/logout/", {"refresh": pair["refresh"]}, format="json").status_code
        == 204
    )
    assert LoginSession.objects.get(user=requester).ended_at is not None


def test_lockout_after_repeated_failures_with_the_unlock_time(requester, settings):
    settings.LOGIN_RATE_PER_ACCOUNT = settings.LOGIN_RATE_PER_IP = "1000/m"
    SecurityPolicy.objects.create(organization=requester.organization, lockout_threshold=3, lockout_minutes=10)
    assert [login(requester.email, "wrong").status_code for _ in range(3)] == [401, 401, 401]
    locked = login(requester.email)  # the right password during the lockout: refused the same way
    assert locked.status_code == 423 and error_code(locked) == "account_locked"
    until = User.objects.get(pk=requester.pk).locked_until
    assert timedelta(minutes=9) < until - timezone.now() <= timedelta(minutes=10)
    assert locked.json()["error"]["details"]["locked_until"] == until.isoformat()
    assert "locked until" in locked.json()["error"]["message"]
    assert 590 <= int(locked["Retry-After"]) <= 601
    assert login(requester.email, "wrong").status_code == 423
    assert AuditLog.objects.filter(action="auth.locked", target_id=str(requester.pk)).count() == 1

    User.objects.filter(pk=requester.pk).update(locked_until=timezone.now() - timedelta(seconds=1))  # time passes
    assert login(requester.email).status_code == 200
    assert User.objects.get(pk=requester.pk).failed_logins == 0


def test_a_success_resets_the_count(requester, settings):
    settings.LOGIN_RATE_PER_ACCOUNT = "1000/m"
    SecurityPolicy.objects.create(organization=requester.organization, lockout_threshold=3)
    for _ in range(2):
        login(requester.email, "wrong")
    assert login(requester.email).status_code == 200
    for _ in range(2):
        login(requester.email, "wrong")
    assert login(requester.email).status_code == 200


def test_admin_unlocks(requester, admin_user, other_admin):
    User.objects.filter(pk=requester.pk).update(locked_until=timezone.now() + timedelta(hours=1))
    assert login(requester.email).status_code == 423
    foreign = Client()
    foreign.force_login(other_admin)
    data = {"action": "unlock_selected", "_selected_action": [str(requester.pk)]}
    foreign.post("/admin/accounts/user/", data)
    assert User.objects.get(pk=requester.pk).locked_until is not None  # not theirs to unlock

    staff = Client()
    staff.force_login(admin_user)
    response = staff.post("/admin/accounts/user/", data)
    assert response.status_code == 302
    assert User.objects.get(pk=requester.pk).locked_until is None
    log = AuditLog.objects.get(action="auth.unlocked")
    assert log.actor_id == admin_user.pk
    assert login(requester.email).status_code == 200


def test_policy_in_the_admin_through_the_service(admin_user, requester):
    staff = Client()
    staff.force_login(admin_user)
    form = {
        "password_min_length": "14",
        "password_check_common": "on",
        "password_history": "3",
        "lockout_threshold": "5",
        "lockout_minutes": "30",
        "require_2fa": "nobody",
    }
    bad = staff.post("/admin/accounts/securitypolicy/add/", {**form, "password_history": "99"})
    assert bad.status_code == 200 and not SecurityPolicy.objects.exists()
    assert staff.post("/admin/accounts/securitypolicy/add/", form).status_code == 302
    policy = SecurityPolicy.objects.get()
    assert policy.organization_id == admin_user.organization_id and policy.password_min_length == 14
    assert AuditLog.objects.filter(action="auth.policy_updated", actor=admin_user).count() == 1
    # The policy applies at once: a 12-character password is now too short for a new user.
    response = api_client(admin_user).post(
        "/api/v1/users/", {"email": "new@acme-test.test", "password": "Twelve-Chars"}, format="json"
    )
    assert response.status_code == 400 and "password" in response.json()["error"]["details"]


def test_password_reuse_is_refused(requester):
    from accounts.services import security_policy_update

    security_policy_update(actor=None, organization=requester.organization, password_history=2)
    change = api_client(requester).post
    body = {"old_password": PASSWORD, "new_password": "Second-Pass-2031"}
    assert change("/api/v1/auth/password/change/", body, format="json").status_code == 204
    back = bearer(login(requester.email, "Second-Pass-2031").json()["access"]).post(
        "/api/v1/auth/password/change/", {"old_password": "Second-Pass-2031", "new_password": PASSWORD}, format="json"
    )
    assert back.status_code == 400 and "used recently" in back.json()["error"]["details"]["new_password"][0]


def test_a_platform_user_without_organization_gets_the_defaults(db):
    platform = make_user(None, "root@platform.test", is_superuser=True, is_staff=True)
    assert login(platform.email).status_code == 200
