"""HTTP hardening under production settings: security headers, HSTS, secure cookies, CORS.

In-process tests run on ``config.settings_test`` (the production settings with DEBUG off,
minus the HTTPS redirect); one subprocess boots the exact production module
``config.settings`` and checks the redirect, HSTS and CORS there.
"""

import json
import os
import subprocess
import sys

import pytest
from django.test import Client, override_settings

from core.testing import PASSWORD
from core.tests.servers import ROOT

APP_ORIGIN = "https://app.example.com"
SAFE_KEY = "prod-" + "x7Kq2Lm9Pz4Rt6Vw8Yb1Nc3Df5Gh0Jk" * 2


def _assert_hardened(response):
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/auth/me/", "/api/v1/no-such-route/", "/health/live/", "/admin/login/"])
def test_security_headers_on_every_kind_of_response(path):
    response = Client().get(path, secure=True)
    _assert_hardened(response)
    hsts = response["Strict-Transport-Security"]
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts and "preload" in hsts


@pytest.mark.django_db
def test_api_errors_are_json_never_html_pages():
    for path in ("/api/v1/auth/me/", "/api/v1/nope/"):
        response = Client().get(path, secure=True)
        assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_admin_cookies_are_secure_httponly_samesite(admin_user):
    client = Client()
    page = client.get("/admin/login/", secure=True)
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": admin_user.email,
            "password": PASSWORD,
            "csrfmiddlewaretoken": csrf.value,
            "next": "/admin/",
        },
        secure=True,
        HTTP_REFERER="https://testserver/admin/login/",
    )
    assert response.status_code == 302, response.content[:500]
    session = response.cookies["sessionid"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"


@pytest.mark.django_db
def test_admin_login_without_csrf_is_refused(admin_user):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": admin_user.email, "password": PASSWORD}, secure=True)
    assert response.status_code == 403
    assert "sessionid" not in response.cookies


@pytest.mark.django_db
@override_settings(CORS_ALLOWED_ORIGINS=[APP_ORIGIN])
def test_cors_allows_only_configured_origins():
    ok = Client().options(
        "/api/v1/auth/login/",
        secure=True,
        HTTP_ORIGIN=APP_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,idempotency-key",
    )
    assert ok["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "authorization" in ok["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in ok  # bearer tokens, no cookies cross-site
    for origin in ("https://evil.example.com", "http://app.example.com", "null"):
        denied = Client().options(
            "/api/v1/auth/login/", secure=True, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
        assert "Access-Control-Allow-Origin" not in denied, origin
    simple = Client().get("/api/v1/auth/me/", secure=True, HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in simple


_PROBE = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client
c = Client(HTTP_HOST="api.example.com")
out = {}
r = c.get("/api/v1/auth/me/")
out["http"] = [r.status_code, r.get("Location")]
r = c.get("/health/live/")
out["health_http"] = r.status_code
r = c.get("/api/v1/auth/me/", secure=True)
out["https"] = {k: r.get(k) for k in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
                                       "Referrer-Policy", "Content-Type")}
out["https_status"] = r.status_code
r = c.options("/api/v1/auth/login/", secure=True, HTTP_ORIGIN="https://app.example.com",
              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
out["cors_ok"] = r.get("Access-Control-Allow-Origin")
r = c.options("/api/v1/auth/login/", secure=True, HTTP_ORIGIN="https://evil.example.com",
              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
out["cors_evil"] = r.get("Access-Control-Allow-Origin")
r = Client(HTTP_HOST="evil.example.com").get("/health/live/", secure=True)
out["bad_host"] = r.status_code
out["settings"] = {k: getattr(settings, k) for k in ("DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
                                                    "SESSION_COOKIE_HTTPONLY", "SECURE_SSL_REDIRECT")}
print(json.dumps(out))
"""


def test_exact_production_settings_module():
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=SAFE_KEY,
        ALLOWED_HOSTS="api.example.com",
        CORS_ALLOWED_ORIGINS=APP_ORIGIN,
    )
    result = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["http"] == [301, "https://api.example.com/api/v1/auth/me/"]
    assert out["health_http"] == 200  # probes from the load balancer are not redirected
    assert out["https_status"] == 401
    assert out["https"]["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert out["https"]["X-Content-Type-Options"] == "nosniff"
    assert out["https"]["X-Frame-Options"] == "DENY"
    assert out["https"]["Referrer-Policy"] == "same-origin"
    assert out["https"]["Content-Type"].startswith("application/json")
    assert out["cors_ok"] == APP_ORIGIN
    assert out["cors_evil"] is None
    assert out["bad_host"] == 400
    assert out["settings"] == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
    }
