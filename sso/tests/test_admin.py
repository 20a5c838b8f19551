"""The admin page edits single sign-on through the service (validation, privilege check, audit)."""

import pytest

from accounts.catalog import ALL_CODES
from auditlogs.models import AuditLog
from core.testing import PASSWORD, make_role, make_user
from sso.models import OIDCProvider

URL = "/admin/sso/oidcprovider/"


@pytest.fixture
def staff_client(client, admin_user):
    assert client.login(username=admin_user.email, password=PASSWORD)
    return client


def form(**changes) -> dict:
    data = {
        "enabled": "on",
        "issuer": "https://idp.acme-test.test",
        "client_id": "workflow",
        "client_secret": "first-secret",
        "allowed_domains": "acme-test.test, Acme.Example",
        "jit_department": "",
        "jit_roles": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_admin_creates_and_changes_through_the_service(staff_client, org, admin_user):
    created = staff_client.post(URL + "add/", form())
    assert created.status_code == 302, created.content.decode()[:2000]
    provider = OIDCProvider.objects.get(organization=org)
    assert provider.allowed_domains == ["acme-test.test", "acme.example"]
    assert provider.client_secret == "first-secret"
    changed = staff_client.post(f"{URL}{provider.pk}/change/", form(client_id="workflow-2", client_secret=""))
    assert changed.status_code == 302
    provider.refresh_from_db()
    assert provider.client_id == "workflow-2" and provider.client_secret == "first-secret"  # blank keeps it
    assert AuditLog.objects.filter(action="auth.oidc_configured", actor=admin_user).count() == 2
    page = staff_client.get(f"{URL}{provider.pk}/change/").content.decode()
    assert "first-secret" not in page


def test_admin_shows_the_services_refusal_and_saves_nothing(staff_client, org):
    refused = staff_client.post(URL + "add/", form(allowed_domains="not a domain", jit_roles="ghost"))
    assert refused.status_code == 200
    body = refused.content.decode()
    assert "Not a domain" in body and "No such role" in body
    assert not OIDCProvider.objects.exists()


def test_admin_without_the_roles_codes_cannot_hand_them_to_newcomers(client, org):
    make_role(org, "everything", sorted(ALL_CODES))
    make_role(org, "org_only", ["org.manage"])
    manager = make_user(org, "orgman@acme-test.test", roles=["org_only"], is_staff=True)
    assert client.login(username=manager.email, password=PASSWORD)
    assert client.get(URL + "add/").status_code == 200  # the page is theirs (org.manage)
    assert client.post(URL + "add/", form()).status_code == 302  # and so is SSO without roles
    OIDCProvider.objects.all().delete()
    response = client.post(URL + "add/", form(jit_create="on", jit_roles="everything"))
    assert response.status_code == 403
    assert not OIDCProvider.objects.exists()
