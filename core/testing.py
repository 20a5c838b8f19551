"""Shared test helpers: factories for the foundation models and an authenticated API client.

Other apps add their own factories in ``<app>/tests/factories.py`` and reuse these.
"""

import itertools
import threading

from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as account_services
from accounts.models import Role, User
from organizations import services as org_services
from organizations.models import Department, Organization

PASSWORD = "Test-Pass-2026!"
_seq = itertools.count(1)


def make_org(slug: str | None = None, **kwargs) -> Organization:
    n = next(_seq)
    slug = slug or f"org{n}"
    return org_services.organization_create(name=kwargs.pop("name", slug.title()), slug=slug, **kwargs)


def make_department(org: Organization, name: str | None = None, **kwargs) -> Department:
    return org_services.department_create(actor=None, organization=org, name=name or f"Dept {next(_seq)}", **kwargs)


def make_role(org: Organization, slug: str, permissions: list[str] | None = None) -> Role:
    existing = Role.objects.for_organization(org).filter(slug=slug).first()
    return existing or account_services.role_create(
        actor=None, organization=org, slug=slug, name=slug.replace("_", " ").title(), permissions=permissions or []
    )


def make_user(org: Organization | None, email: str | None = None, roles: list[str] | None = None, **kwargs) -> User:
    email = email or f"user{next(_seq)}@{org.slug if org else 'platform'}.test"
    if org is None:
        return User.objects.create_user(email=email, password=PASSWORD, **kwargs)
    for slug in roles or []:
        make_role(org, slug)
    return account_services.user_create(
        actor=None, organization=org, email=email, password=PASSWORD, roles=roles or ["requester"], **kwargs
    )


def api_client(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def error_code(response) -> str:
    """The envelope's code (asserting the envelope shape on the way)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "details"} <= set(body["error"]), body
    return body["error"]["code"]


def race(call, n: int, timeout: float = 30) -> list:
    """``call(i)`` in n real threads released together, each on its own database connection.

    Returns the n results in thread order; an exception becomes its repr, so the caller's
    assertions show it.
    """
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 (surfaced by the caller's assertions)
            results[i] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return results
