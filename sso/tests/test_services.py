"""The single sign-on configuration: validated, privilege-checked, audited without the secret."""

import pytest

from accounts.catalog import ALL_CODES
from auditlogs.models import AuditLog
from core.exceptions import Forbidden, ValidationFailed
from core.testing import api_client, error_code, make_department, make_org, make_role, make_user
from core.tests.servers import free_port
from sso import services
from sso.models import OIDCLoginAttempt, OIDCProvider

ISSUER = "https://idp.acme-test.test"


def save(actor, org, **fields):
    return services.oidc_provider_save(actor=actor, organization=org, **fields)


def test_roles_given_by_jit_need_the_editors_privileges(org, admin_user):
    make_role(org, "approver_plus", sorted(ALL_CODES))
    make_role(org, "org_manager_only", ["org.manage"])
    # org.manage opens the page, but without roles.manage and the role's codes nobody can make
    # every newcomer something they could not grant by hand
    org_manager = make_user(org, "orgman@acme-test.test", roles=["org_manager_only"])
    with pytest.raises(Forbidden) as refused:
        save(org_manager, org, issuer=ISSUER, client_id="c", jit_create=True, jit_roles=["approver_plus"])
    assert refused.value.code == "cannot_grant"
    assert not OIDCProvider.objects.exists() and not AuditLog.objects.filter(action="auth.oidc_configured").exists()
    provider = save(admin_user, org, issuer=ISSUER, client_id="c", jit_create=True, jit_roles=["approver_plus"])
    assert provider.jit_roles == ["approver_plus"]


def test_invalid_configuration_changes_nothing(org, other_org, admin_user):
    foreign = make_department(other_org, "Elsewhere")
    with pytest.raises(ValidationFailed) as refused:
        save(
            admin_user,
            org,
            issuer="ftp://idp",
            client_id="c",
            allowed_domains=["acme.example", "not a domain"],
            jit_department=foreign,
            jit_roles=["no-such-role"],
        )
    assert set(refused.value.details) == {"issuer", "allowed_domains", "jit_department", "jit_roles"}
    assert not OIDCProvider.objects.exists()


def test_secret_is_kept_out_of_the_audit_log(org, admin_user):
    save(admin_user, org, issuer=ISSUER, client_id="c", client_secret="s3cret-value", allowed_domains=["Acme.Example"])
    provider = OIDCProvider.objects.get(organization=org)
    assert provider.allowed_domains == ["acme.example"] and provider.client_secret == "s3cret-value"
    save(admin_user, org, client_secret="rotated-value")
    assert OIDCProvider.objects.get(pk=provider.pk).client_secret == "rotated-value"
    logs = AuditLog.objects.filter(action="auth.oidc_configured").order_by("created_at")
    assert logs.count() == 2 and logs.last().changes == {"client_secret": ["(hidden)", "(changed)"]}
    assert not any("s3cret" in str(log.changes) or "rotated" in str(log.changes) for log in logs)


def test_one_provider_per_organization_scoped(org, admin_user):
    other = make_org("beta-test")
    save(admin_user, org, issuer=ISSUER, client_id="a")
    save(None, other, issuer=ISSUER, client_id="b")
    save(admin_user, org, client_id="a2")
    assert dict(OIDCProvider.objects.values_list("organization__slug", "client_id")) == {
        "acme-test": "a2",
        "beta-test": "b",
    }


def test_login_of_an_organization_without_sso_is_a_404(org):
    response = api_client().get(f"/api/v1/auth/oidc/{org.slug}/login/")
    assert response.status_code == 404 and error_code(response) == "not_found"
    unknown = api_client().get("/api/v1/auth/oidc/no-such-org/login/")
    assert unknown.status_code == 404 and error_code(unknown) == "not_found"


def test_unreachable_provider_is_a_502_and_records_no_attempt(org, admin_user, django_assert_num_queries):

    save(admin_user, org, issuer=f"http://127.0.0.1:{free_port()}", client_id="c")
    with django_assert_num_queries(1):  # the provider lookup; nothing written
        response = api_client().get(f"/api/v1/auth/oidc/{org.slug}/login/")
    assert response.status_code == 502 and error_code(response) == "oidc_provider_unavailable"
    assert not OIDCLoginAttempt.objects.exists()


def test_callback_without_a_code_or_with_an_unknown_state(org):
    refused = api_client().get("/api/v1/auth/oidc/callback/?error=access_denied&state=x")
    assert refused.status_code == 401 and error_code(refused) == "oidc_refused"
    client = api_client()
    client.cookies["oidc_state"] = "made-up"
    unknown = client.get("/api/v1/auth/oidc/callback/?state=made-up&code=abc")
    assert unknown.status_code == 401 and error_code(unknown) == "oidc_state_invalid"
    assert AuditLog.objects.get(action="auth.oidc_refused").changes == {"reason": [None, "state"]}


def test_both_endpoints_are_limited_per_ip(org, settings):
    settings.OIDC_RATE_PER_IP = "2/m"
    client = api_client()
    assert client.get("/api/v1/auth/oidc/callback/").status_code == 401
    assert client.get(f"/api/v1/auth/oidc/{org.slug}/login/").status_code == 404
    limited = client.get("/api/v1/auth/oidc/callback/")
    assert limited.status_code == 429 and error_code(limited) == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
