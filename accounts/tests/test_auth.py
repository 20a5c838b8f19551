import pytest
from django.test import override_settings

from auditlogs.models import AuditLog
from core.testing import PASSWORD, api_client, error_code

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"


def login(client, email, password=PASSWORD):
    return client.post(LOGIN, {"email": email, "password": password}, format="json")


def test_login_returns_tokens_and_user(requester):
    response = login(api_client(), requester.email)
    assert response.status_code == 200
    body = response.json()
    assert {"access", "refresh", "user"} <= set(body)
    assert body["user"]["email"] == requester.email
    assert body["user"]["organization"]["slug"] == "acme-test"
    assert "requests.create" in body["user"]["permissions"]
    assert AuditLog.objects.filter(action="user.login", actor=requester).count() == 1


def test_login_is_case_insensitive_on_email(requester):
    assert login(api_client(), requester.email.upper()).status_code == 200


def test_bad_credentials_401_envelope_and_audited(requester):
    response = login(api_client(), requester.email, "wrong-password")
    assert response.status_code == 401
    assert error_code(response) == "invalid_credentials"
    assert AuditLog.objects.filter(action="user.login_failed").count() == 1


def test_login_validation_error_envelope(db):
    response = api_client().post(LOGIN, {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert set(response.json()["error"]["details"]) == {"email", "password"}


def test_me(requester):
    response = api_client(requester).get("/api/v1/auth/me/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"id", "email", "first_name", "last_name", "organization", "department", "roles", "permissions"}
    assert body["roles"] == ["requester"]
    assert body["organization"] == {"id": str(requester.organization_id), "slug": "acme-test", "name": "Acme Test"}


def test_unauthenticated_401_envelope(db):
    response = api_client().get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_garbage_token_401(db):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert error_code(response) == "authentication_failed"


def test_refresh_rotates_and_old_refresh_is_dead(requester):
    tokens = login(api_client(), requester.email).json()
    first = api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200
    assert {"access", "refresh"} == set(first.json())
    assert first.json()["refresh"] != tokens["refresh"]
    again = api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401
    assert error_code(again) == "token_not_valid"
    newer = api_client().post(REFRESH, {"refresh": first.json()["refresh"]}, format="json")
    assert newer.status_code == 200


def test_logout_kills_refresh(requester):
    tokens = login(api_client(), requester.email).json()
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code == 204
    assert api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401
    assert AuditLog.objects.filter(action="user.logout", actor=requester).exists()


def test_logout_with_someone_elses_refresh_is_refused(requester, admin_user):
    theirs = login(api_client(), admin_user.email).json()
    response = api_client(requester).post("/api/v1/auth/logout/", {"refresh": theirs["refresh"]}, format="json")
    assert response.status_code == 400
    assert api_client().post(REFRESH, {"refresh": theirs["refresh"]}, format="json").status_code == 200


def test_password_change_applies_validators_and_revokes_refresh(requester):
    tokens = login(api_client(), requester.email).json()
    client = api_client(requester)
    weak = client.post(
        "/api/v1/auth/password/change/", {"old_password": PASSWORD, "new_password": "12345"}, format="json"
    )
    assert weak.status_code == 400
    assert "new_password" in weak.json()["error"]["details"]
    wrong = client.post(
        "/api/v1/auth/password/change/", {"old_password": "nope", "new_password": "Another-Good-Pass-9"}, format="json"
    )
    assert wrong.status_code == 400
    ok = client.post(
        "/api/v1/auth/password/change/",
        {"old_password": PASSWORD, "new_password": "Another-Good-Pass-9"},
        format="json",
    )
    assert ok.status_code == 204
    assert login(api_client(), requester.email).status_code == 401
    assert login(api_client(), requester.email, "Another-Good-Pass-9").status_code == 200
    assert api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401
    assert AuditLog.objects.filter(action="password.changed", actor=requester).exists()


def test_deactivated_user_is_locked_out(requester, admin_user):
    tokens = login(api_client(), requester.email).json()
    assert api_client(admin_user).delete(f"/api/v1/users/{requester.pk}/").status_code == 204
    assert login(api_client(), requester.email).status_code == 401
    stale = api_client()
    stale.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert stale.get("/api/v1/auth/me/").status_code == 401
    assert api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401


@override_settings(LOGIN_RATE_PER_ACCOUNT="3/m", LOGIN_RATE_PER_IP="100/m")
def test_login_rate_limited_per_account(requester):
    for _ in range(3):
        login(api_client(), requester.email, "bad")
    response = login(api_client(), requester.email)
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert response["Retry-After"] == "60"


@override_settings(LOGIN_RATE_PER_ACCOUNT="100/m", LOGIN_RATE_PER_IP="4/m")
def test_login_rate_limited_per_ip(requester):
    for i in range(4):
        login(api_client(), f"nobody{i}@x.test", "bad")
    response = login(api_client(), requester.email)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def _bearer(access):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_token_check_adds_no_query(requester, django_assert_num_queries):
    """The token version is compared on the user row the authentication loads anyway: /auth/me/ is
    one query, the user with its organization and roles (issue 14)."""
    access = login(api_client(), requester.email).json()["access"]
    client = _bearer(access)
    with django_assert_num_queries(1):
        assert client.get("/api/v1/auth/me/").status_code == 200


def test_logout_ends_other_devices_access_but_not_their_refresh(requester):
    """Issue 19.3: logout raises the token version; another device refreshes into a working session."""
    phone = login(api_client(), requester.email).json()
    laptop = login(api_client(), requester.email).json()
    client = _bearer(laptop["access"])
    assert client.post("/api/v1/auth/logout/", {"refresh": laptop["refresh"]}, format="json").status_code == 204
    for access in (laptop["access"], phone["access"]):
        response = _bearer(access).get("/api/v1/auth/me/")
        assert response.status_code == 401 and error_code(response) == "authentication_failed"
        assert response.json()["error"]["message"] == "Token has been revoked."
    renewed = api_client().post(REFRESH, {"refresh": phone["refresh"]}, format="json")
    assert renewed.status_code == 200
    assert _bearer(renewed.json()["access"]).get("/api/v1/auth/me/").status_code == 200
    assert api_client().post(REFRESH, {"refresh": laptop["refresh"]}, format="json").status_code == 401


def test_admin_password_page_ends_sessions(requester, admin_user, client):
    access = login(api_client(), requester.email).json()["access"]
    assert client.login(username=admin_user.email, password=PASSWORD)
    response = client.post(
        f"/admin/accounts/user/{requester.pk}/password/",
        {"password1": "Admin-Set-Pass-2031", "password2": "Admin-Set-Pass-2031", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert _bearer(access).get("/api/v1/auth/me/").status_code == 401
    assert login(api_client(), requester.email, "Admin-Set-Pass-2031").status_code == 200


def test_login_counters_of_past_windows_are_pruned(requester):
    import time

    from accounts.models import LoginAccountCounter
    from accounts.services import login_counters_prune

    login(api_client(), requester.email)
    assert LoginAccountCounter.objects.count() == 1
    LoginAccountCounter.objects.create(account="0" * 64, window_start=int(time.time()) - 2 * 86400, count=9)
    assert login_counters_prune() == 1
    assert LoginAccountCounter.objects.count() == 1
