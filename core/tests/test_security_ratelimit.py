"""Rate limits: login per IP and per account, refresh per IP, and the general throttle of
authenticated API use, all counted in the shared cache (Redis) so they hold across processes.

The cross-process test starts two real daphne processes against the same PostgreSQL
database and Redis, and spreads the attempts over both.
"""

import httpx
import pytest
from rest_framework.throttling import UserRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken

from core.testing import PASSWORD, api_client, error_code, make_org, make_user
from core.tests.api_routes import api_views
from core.tests.servers import daphne_servers

ME = "/api/v1/auth/me/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"


@pytest.mark.django_db
def test_authenticated_throttle_answers_429_envelope_with_retry_after(requester, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min"})
    client = api_client(requester)
    for _ in range(3):
        assert client.get(ME).status_code == 200
    response = client.get(ME)
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 61
    # Per user: someone else in the same org is not affected.
    other = make_user(requester.organization, "other@acme-test.test")
    assert api_client(other).get(ME).status_code == 200


@pytest.mark.django_db
def test_the_throttle_is_on_by_default_for_every_api_view():
    """Every authenticated API view inherits the general throttle (the public auth views have their own limits)."""
    missing = []
    for _, p, cls in api_views():
        throttles = list(cls.throttle_classes)
        own_limit = cls.__name__ in {
            "LoginView",
            "RefreshView",
            "OIDCLoginView",  # per IP (sso/views.py)
            "OIDCCallbackView",
            "LoginSecondFactorView",  # per IP and per account (accounts/tests/test_mfa.py)
            "PasswordResetRequestView",  # per IP and per address (accounts/tests/test_password_reset.py)
            "PasswordResetConfirmView",  # per IP and per link
        }
        if not own_limit and not any(issubclass(t, UserRateThrottle) for t in throttles):
            missing.append(f"{p.pattern} {cls.__name__}")
    assert missing == []


@pytest.mark.django_db
def test_refresh_rate_limited_per_ip_with_envelope(settings):
    settings.REFRESH_RATE_PER_IP = "3/h"
    client = api_client()
    for _ in range(3):
        assert client.post(REFRESH, {"refresh": "garbage"}, format="json").status_code == 401
    response = client.post(REFRESH, {"refresh": "garbage"}, format="json")
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert response["Retry-After"] == "3600"


@pytest.mark.django_db
def test_login_rate_limit_429_changes_nothing(requester, settings):
    """A refused login does not log in, does not audit a login, and still refuses the right password."""
    from auditlogs.models import AuditLog

    settings.LOGIN_RATE_PER_ACCOUNT = "2/h"
    client = api_client()
    for _ in range(2):
        client.post(LOGIN, {"email": requester.email, "password": "wrong"}, format="json")
    before = AuditLog.objects.count()
    response = client.post(LOGIN, {"email": requester.email, "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response["Retry-After"] == "3600"
    assert AuditLog.objects.count() == before
    requester.refresh_from_db()
    assert requester.last_login is None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_limits_hold_across_two_server_processes():
    org = make_org("rl-org")
    user = make_user(org, "rl@rl.test")
    env = {
        "LOGIN_RATE_PER_ACCOUNT": "3/h",
        "LOGIN_RATE_PER_IP": "100/h",
        "REFRESH_RATE_PER_IP": "3/h",
        "API_THROTTLE_RATE": "4/hour",
    }
    with daphne_servers(2, **env) as (a, b):
        # Login per account: three failures spread over A and B, then B refuses the right password.
        for base in (a, b, a):
            r = httpx.post(f"{base}{LOGIN}", json={"email": user.email, "password": "wrong"})
            assert r.status_code == 401, r.text
        r = httpx.post(f"{b}{LOGIN}", json={"email": user.email, "password": PASSWORD})
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rate_limited"
        assert r.headers["Retry-After"] == "3600"

        # General authenticated throttle: 4 calls over A and B, the 5th (either process) is 429.
        access = str(RefreshToken.for_user(user).access_token)
        headers = {"Authorization": f"Bearer {access}"}
        for base in (a, b, a, b):
            assert httpx.get(f"{base}{ME}", headers=headers).status_code == 200
        for base in (a, b):
            r = httpx.get(f"{base}{ME}", headers=headers)
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "rate_limited"
            assert int(r.headers["Retry-After"]) > 0

        # Refresh per IP.
        for base in (b, a, b):
            assert httpx.post(f"{base}{REFRESH}", json={"refresh": "garbage"}).status_code == 401
        r = httpx.post(f"{a}{REFRESH}", json={"refresh": "garbage"})
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "3600"


UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # a closed port: every Redis call is refused


@pytest.mark.django_db(transaction=True)
def test_account_limit_holds_with_redis_unreachable_across_threads(settings):
    """Issue 19.10: with Redis unreachable the per-account limit still counts every attempt, from
    any thread (gunicorn's threaded workers) - it lives in the database, not in the cache."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    settings.CACHES = {"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": UNREACHABLE_REDIS}}
    settings.LOGIN_RATE_PER_ACCOUNT = "4/h"
    settings.LOGIN_RATE_PER_IP = "1000/h"
    user = make_user(make_org("rl-down"), "down@rl.test")

    def attempt(password):
        try:
            return api_client().post(LOGIN, {"email": user.email, "password": password}, format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, ["wrong"] * 8))
    assert sorted(statuses) == [401] * 4 + [429] * 4
    assert attempt(PASSWORD) == 429  # the right password too, until the window ends


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_account_limit_holds_across_processes_with_redis_unreachable():
    org = make_org("rl-down-2")
    user = make_user(org, "down2@rl.test")
    env = {"REDIS_URL": UNREACHABLE_REDIS, "LOGIN_RATE_PER_ACCOUNT": "3/h", "LOGIN_RATE_PER_IP": "100/h"}
    with daphne_servers(2, **env) as (a, b):
        for base in (a, b, a):
            r = httpx.post(f"{base}{LOGIN}", json={"email": user.email, "password": "wrong"})
            assert r.status_code == 401, r.text
        for base in (a, b):
            r = httpx.post(f"{base}{LOGIN}", json={"email": user.email, "password": PASSWORD})
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "rate_limited"
