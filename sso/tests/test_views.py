"""Single sign-on end to end against a real OpenID Connect provider process (sso/tests/conftest.py)."""

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from accounts import services as account_services
from accounts.models import LoginSession, User
from auditlogs.models import AuditLog
from core.testing import PASSWORD, api_client, error_code, make_department, make_org, make_role, make_user, race
from sso import services
from sso.models import OIDCLoginAttempt

pytestmark = pytest.mark.integration


@pytest.fixture
def sso_org(org, oidc_provider, settings):
    settings.OIDC_RATE_PER_IP = "1000/m"  # the limit has its own test (test_services.py)
    services.oidc_provider_save(
        actor=None,
        organization=org,
        issuer=oidc_provider.issuer,
        client_id=oidc_provider.client_id,
        client_secret=oidc_provider.client_secret,
        allowed_domains=["acme-test.test"],
    )
    return org


def sign_in(
    oidc_provider, email: str, *, org_slug: str = "acme-test", tamper=None, follow: bool = True, client=None, query=""
):
    """Start at our login, sign in at the provider as ``email``, return our callback's response
    (``follow=False``: the callback's address, not yet called)."""
    client = client or api_client()
    start = client.get(f"/api/v1/auth/oidc/{org_slug}/login/{query}")
    assert start.status_code == 302, start.content
    authorize = start["Location"]
    assert authorize.startswith(oidc_provider.issuer + "/authorize/")
    if tamper:
        authorize = tamper(authorize)
    with httpx.Client(base_url=oidc_provider.base, timeout=30) as browser:
        location = f"/sign-in/?{urlencode({'email': email, 'next': authorize})}"
        while not location.startswith("http://testserver/"):
            answer = browser.get(location)
            assert answer.status_code == 302, answer.text[:500]
            location = answer.headers["location"]
    callback = location.removeprefix("http://testserver")
    return client.get(callback) if follow else (callback, client.cookies["oidc_state"].value)


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_happy_path_issues_the_same_token_pair_as_a_password_login(sso_org, oidc_provider):
    user = make_user(sso_org, "ann@acme-test.test")
    response = sign_in(oidc_provider, "ann@acme-test.test")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"]["email"] == "ann@acme-test.test"
    me = api_client()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.get("/api/v1/auth/me/").json()["id"] == str(user.pk)
    assert api_client().post("/api/v1/auth/refresh/", {"refresh": body["refresh"]}).status_code == 200
    assert LoginSession.objects.get(user=user).method == "oidc"
    assert AuditLog.objects.filter(action="auth.oidc_login", target_id=str(user.pk)).count() == 1
    assert not OIDCLoginAttempt.objects.exists()  # the attempt was used up


def test_state_is_single_use(sso_org, oidc_provider):
    make_user(sso_org, "ben@acme-test.test")
    client = api_client()
    first = sign_in(oidc_provider, "ben@acme-test.test")
    assert first.status_code == 200
    replay = client.get(first.wsgi_request.get_full_path())
    assert replay.status_code == 401 and error_code(replay) == "oidc_state_invalid"
    assert LoginSession.objects.count() == 1


def test_just_in_time_creation_into_the_configured_department_and_roles(sso_org, oidc_provider):
    department = make_department(sso_org, "Field")
    make_role(sso_org, "field_staff")
    services.oidc_provider_save(
        actor=None, organization=sso_org, jit_create=True, jit_department=department, jit_roles=["field_staff"]
    )
    response = sign_in(oidc_provider, "newcomer@acme-test.test")
    assert response.status_code == 200, response.content
    user = User.objects.get(email="newcomer@acme-test.test")
    assert user.organization_id == sso_org.pk and user.department_id == department.pk
    assert [m.role.slug for m in user.role_memberships.select_related("role")] == ["field_staff"]
    assert not user.has_usable_password() and not user.is_staff


def test_unknown_email_without_jit_is_refused(sso_org, oidc_provider):
    response = sign_in(oidc_provider, "nobody@acme-test.test")
    assert response.status_code == 403 and error_code(response) == "oidc_no_account"
    assert not User.objects.filter(email="nobody@acme-test.test").exists()


def _refused(response, status: int, code: str, reason: str | None = None):
    assert response.status_code == status, response.content
    assert error_code(response) == code
    assert not LoginSession.objects.exists()
    assert not AuditLog.objects.filter(action__in=["auth.oidc_login", "user.login"]).exists()
    refusal = AuditLog.objects.get(action="auth.oidc_refused")
    assert refusal.changes == {"reason": [None, reason or code]}


def test_wrong_audience_is_refused(sso_org, oidc_provider):
    make_user(sso_org, "wrong-aud@acme-test.test")
    _refused(sign_in(oidc_provider, "wrong-aud@acme-test.test"), 401, "oidc_token_invalid", "audience")


def test_bad_nonce_is_refused(sso_org, oidc_provider):
    make_user(sso_org, "cat@acme-test.test")
    response = sign_in(oidc_provider, "cat@acme-test.test", tamper=lambda url: with_query(url, nonce="forged"))
    _refused(response, 401, "oidc_token_invalid", "nonce")


def test_email_outside_the_allowed_domains_is_refused(sso_org, oidc_provider):
    make_user(sso_org, "dan@elsewhere.test")
    _refused(sign_in(oidc_provider, "dan@elsewhere.test"), 403, "oidc_domain_not_allowed")


def test_deactivated_user_is_refused(sso_org, oidc_provider):
    account_services.user_deactivate(actor=None, user=make_user(sso_org, "eve@acme-test.test"))
    _refused(sign_in(oidc_provider, "eve@acme-test.test"), 403, "account_inactive")


def test_password_login_is_unaffected(sso_org, oidc_provider):
    make_user(sso_org, "fay@acme-test.test")
    response = api_client().post("/api/v1/auth/login/", {"email": "fay@acme-test.test", "password": PASSWORD})
    assert response.status_code == 200


def test_an_account_of_another_organization_is_refused(sso_org, other_org, oidc_provider):
    make_user(other_org, "gus@acme-test.test")
    _refused(sign_in(oidc_provider, "gus@acme-test.test"), 403, "oidc_wrong_organization")
    assert AuditLog.objects.get(action="auth.oidc_refused").organization_id == sso_org.pk


@pytest.mark.django_db(transaction=True)
def test_one_callback_of_racing_replays_wins(oidc_provider, settings):
    """Real threads, each with its own connection: the attempt row is locked and deleted, so of N
    callbacks with the same state exactly one signs in."""
    settings.OIDC_RATE_PER_IP = "1000/m"
    org = make_org("race-sso")
    services.oidc_provider_save(
        actor=None,
        organization=org,
        issuer=oidc_provider.issuer,
        client_id=oidc_provider.client_id,
        client_secret=oidc_provider.client_secret,
        allowed_domains=["race-sso.test"],
    )
    make_user(org, "hal@race-sso.test")
    callback, browser_state = sign_in(oidc_provider, "hal@race-sso.test", org_slug="race-sso", follow=False)
    n = 6

    def callback_once(_i):
        client = api_client()
        client.cookies["oidc_state"] = browser_state
        response = client.get(callback)
        return (response.status_code, response.json())

    results = race(callback_once, n, timeout=60)
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] + [401] * (n - 1), results
    assert {r[1]["error"]["code"] for r in results if r[0] == 401} == {"oidc_state_invalid"}
    assert LoginSession.objects.filter(user__email="hal@race-sso.test").count() == 1


def test_a_callback_opened_in_another_browser_is_refused(sso_org, oidc_provider):
    """Login CSRF: someone's callback address (their code and state) opened by someone else."""
    make_user(sso_org, "ivy@acme-test.test")
    callback, _ = sign_in(oidc_provider, "ivy@acme-test.test", follow=False)
    elsewhere = api_client().get(callback)
    assert elsewhere.status_code == 401 and error_code(elsewhere) == "oidc_state_invalid"
    assert not LoginSession.objects.exists()
    assert OIDCLoginAttempt.objects.count() == 1  # left alone: the right browser may still finish


def test_staff_sign_in_to_the_admin(sso_org, oidc_provider, client):
    staff = make_user(sso_org, "jo@acme-test.test", roles=["org_admin"], is_staff=True)
    response = sign_in(oidc_provider, staff.email, client=client, query="?next=admin")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert not LoginSession.objects.exists()  # no API tokens for an admin sign-in
    log = AuditLog.objects.get(action="auth.oidc_login")
    assert log.changes["purpose"] == [None, "admin"]


def test_admin_sign_in_of_someone_not_staff_is_refused(sso_org, oidc_provider, client):
    make_user(sso_org, "kim@acme-test.test")
    response = sign_in(oidc_provider, "kim@acme-test.test", client=client, query="?next=admin")
    _refused(response, 403, "not_staff")
    assert client.get("/admin/").status_code == 302  # still to the admin's login page
