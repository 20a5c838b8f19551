"""Tenant-scoping guard: every API view and admin page builds its queryset with an organization filter.

Walks every DRF view reachable from ``config.api_urls`` and every ``ModelAdmin`` in the admin
site, builds the queryset each action would use for a user of organization A, and inspects the
query's WHERE tree (not its text): the top-level conjunction must compare an ``organization_id``
column (of the model or of a joined/sub-queried table) with A's id, or, for per-user data, a
foreign key to the user with the caller's id (a user belongs to exactly one organization).
A new view or admin whose queryset lacks that filter fails here.
"""

import re
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Model
from django.db.models.expressions import Col
from django.db.models.lookups import Exact, In
from django.db.models.sql import Query
from django.db.models.sql.where import OR, WhereNode
from django.test import RequestFactory
from rest_framework import viewsets
from rest_framework.request import Request as DrfRequest
from rest_framework.test import APIRequestFactory

from core.admin import OrgScopedAdmin
from core.api import OrgScopedViewMixin
from core.testing import make_user
from core.tests.api_routes import api_views
from organizations.models import Organization

pytestmark = pytest.mark.django_db
User = get_user_model()

# Admin models that are platform-wide (not tenant-owned): only platform superusers may see them.
PLATFORM_ADMIN_MODELS = {
    "auth.group",
    "token_blacklist.outstandingtoken",
    "token_blacklist.blacklistedtoken",
    "django_celery_beat.solarschedule",
    "django_celery_beat.intervalschedule",
    "django_celery_beat.clockedschedule",
    "django_celery_beat.crontabschedule",
    "django_celery_beat.periodictask",
}


# --- the query inspection ------------------------------------------------------------------------


def _values(lookup) -> list[str]:
    rhs = lookup.rhs
    items = rhs if isinstance(lookup, In) and isinstance(rhs, (list, tuple, set, frozenset)) else [rhs]
    return [str(getattr(v, "pk", v)) for v in items]


def _leaf_scope(leaf, org_id: str, user_id: str) -> str | None:
    lhs, rhs = getattr(leaf, "lhs", None), getattr(leaf, "rhs", None)
    if isinstance(leaf, (Exact, In)) and isinstance(lhs, Col):
        field, values = lhs.target, _values(leaf)
        if field.column == "organization_id" and org_id in values:
            return "organization"
        if field.model is Organization and field.primary_key and org_id in values:
            return "organization"
        if user_id in values and (
            getattr(field, "related_model", None) is User or (field.model is User and field.primary_key)
        ):
            return "user"
    # Sub-queries: ``pk__in=<scoped query>``, ``Exists(<scoped query>)``, ``Subquery(...)``.
    for candidate in (rhs, leaf):
        inner = candidate if isinstance(candidate, Query) else getattr(candidate, "query", None)
        if isinstance(inner, Query) and (scope := _node_scope(inner.where, org_id, user_id)):
            return scope
    return None


def _node_scope(node, org_id: str, user_id: str) -> str | None:
    if not isinstance(node, WhereNode):
        return _leaf_scope(node, org_id, user_id)
    if node.negated:
        return None
    scopes = [_node_scope(child, org_id, user_id) for child in node.children]
    if node.connector == OR:
        return scopes[0] if scopes and all(scopes) else None
    return next((s for s in scopes if s), None)


def queryset_scope(qs, org: Organization, user) -> str | None:
    """'organization' / 'user' when the queryset is scoped to ``org`` (or ``user``), else None."""
    return _node_scope(qs.query.where, str(org.pk), str(user.pk))


def tenant_path(model: type[Model], depth: int = 3) -> str | None:
    """How a model reaches an organization (``organization``, ``version__organization``...), or None."""
    if model is Organization:
        return "pk"
    frontier = [(model, "")]
    for _ in range(depth):
        nxt = []
        for m, prefix in frontier:
            for f in m._meta.concrete_fields:
                if not f.is_relation or f.related_model is None:
                    continue
                if f.related_model is Organization:
                    return f"{prefix}{f.name}"
                nxt.append((f.related_model, f"{prefix}{f.name}__"))
        frontier = nxt
    return None


# --- walking the API ---------------------------------------------------------------------------------


def api_routes():
    """(pattern, view class, {http_method: action or None}) for every DRF view under /api/v1/."""
    return [
        (route, cls, dict(getattr(p.callback, "actions", None) or {}), dict(getattr(p.callback, "initkwargs", {})))
        for route, p, cls in api_views()
    ]


def build_view(cls, actions, initkwargs, method, user, pattern):
    django_request = getattr(APIRequestFactory(), method)("/")
    request = DrfRequest(django_request)
    request.user = user
    view = cls(**initkwargs)
    view.request = request
    view.args = ()
    view.kwargs = {name: str(uuid.uuid4()) for name in re.findall(r"\?P<(\w+)>", pattern)}
    view.format_kwarg = None
    view.headers = {}
    if actions:
        view.action_map = actions
        view.action = actions.get(method)
    return view


def check_view(cls, actions, initkwargs, pattern, org, users) -> list[str]:
    """Problems of one route (empty when every action's queryset is scoped)."""
    if not hasattr(cls, "get_queryset"):
        return []
    problems = []
    methods = list(actions) if actions else [m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]
    for method in methods:
        for user in users:
            view = build_view(cls, actions, initkwargs, method, user, pattern)
            try:
                qs = view.get_queryset()
            except AssertionError:
                continue  # a GenericAPIView without a queryset that never reads one
            model = qs.model
            if tenant_path(model) is None:
                continue
            if queryset_scope(qs, org, user) is None:
                problems.append(f"{pattern} {cls.__name__}.{view.action or method} as {user.email}: {qs.query}")
    return problems


@pytest.fixture
def tenants(org, other_org):
    users = [
        make_user(org, "guard-admin@a.test", roles=["org_admin"], is_staff=True),
        make_user(org, "guard-req@a.test", roles=["requester"]),
        make_user(org, "guard-aud@a.test", roles=["auditor"]),
    ]
    make_user(other_org, "guard-b@b.test", roles=["org_admin"], is_staff=True)
    return org, users


def test_every_api_queryset_is_scoped_to_the_callers_organization(tenants):
    org, users = tenants
    routes = api_routes()
    assert len(routes) >= 10, routes
    problems, checked = [], 0
    for pattern, cls, actions, initkwargs in routes:
        if hasattr(cls, "get_queryset"):
            checked += 1
        problems += check_view(cls, actions, initkwargs, pattern, org, users)
    assert checked >= 8
    assert problems == [], "\n".join(problems)


def test_every_tenant_api_view_uses_the_org_scoped_mixin():
    """Views with a queryset get ``self.organization`` and HasPermissionCode from the mixin."""
    offenders = [
        f"{pattern} {cls.__name__}"
        for pattern, cls, _a, _k in api_routes()
        if hasattr(cls, "get_queryset") and not issubclass(cls, OrgScopedViewMixin)
    ]
    assert offenders == []


def test_the_guard_catches_an_unscoped_view(tenants):
    from requests.models import Request

    class LeakyViewSet(OrgScopedViewMixin, viewsets.ReadOnlyModelViewSet):
        def get_queryset(self):
            return Request.objects.all()

    class OrLeakViewSet(OrgScopedViewMixin, viewsets.ReadOnlyModelViewSet):
        def get_queryset(self):
            from django.db.models import Q

            return Request.objects.filter(Q(organization=self.organization) | Q(title__startswith="x"))

    class ScopedViewSet(OrgScopedViewMixin, viewsets.ReadOnlyModelViewSet):
        def get_queryset(self):
            return Request.objects.for_organization(self.organization).filter(status="pending")

    org, users = tenants
    for leaky in (LeakyViewSet, OrLeakViewSet):
        assert check_view(leaky, {"get": "list"}, {}, "leaky/", org, users)
    assert check_view(ScopedViewSet, {"get": "list"}, {}, "scoped/", org, users) == []


# --- the admin --------------------------------------------------------------------------------------


def test_every_tenant_admin_is_org_scoped(tenants):
    org, users = tenants
    staff = users[0]
    request = RequestFactory().get("/admin/")
    request.user = staff
    problems = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if tenant_path(model) is None or label in PLATFORM_ADMIN_MODELS:
            continue
        if not isinstance(model_admin, OrgScopedAdmin):
            problems.append(f"{label}: {type(model_admin).__name__} is not an OrgScopedAdmin")
            continue
        qs = model_admin.get_queryset(request)
        if queryset_scope(qs, org, staff) != "organization":
            problems.append(f"{label}: admin queryset not filtered by organization: {qs.query}")
    assert problems == [], "\n".join(problems)


def test_platform_admin_pages_are_closed_to_org_staff(tenants):
    _org, users = tenants
    request = RequestFactory().get("/admin/")
    request.user = users[0]  # staff org admin, not a superuser
    platform = {m._meta.label_lower: a for m, a in admin.site._registry.items() if not isinstance(a, OrgScopedAdmin)}
    assert set(platform) <= PLATFORM_ADMIN_MODELS, f"scope or classify: {set(platform) - PLATFORM_ADMIN_MODELS}"
    for label, model_admin in platform.items():
        assert not model_admin.has_module_permission(request), label
        assert not model_admin.has_view_permission(request), label
        assert not model_admin.has_change_permission(request), label
        assert not model_admin.has_delete_permission(request), label


# Personal data: one person's, not their organization's. A colleague must not read it, so its routes
# filter by the caller as well as by the organization.
PERSONAL_MODELS = {"notifications.notification", "notifications.notificationpreference"}


def conjunction_scopes(node, org_id: str, user_id: str) -> set[str]:
    """Every scope the top-level conjunction imposes ({'organization', 'user'} when it filters by both)."""
    if isinstance(node, WhereNode) and not node.negated and node.connector != OR:
        return set().union(*(conjunction_scopes(child, org_id, user_id) for child in node.children))
    scope = _node_scope(node, org_id, user_id)
    return {scope} if scope else set()


def test_personal_data_is_scoped_to_the_caller(tenants):
    from notifications.models import Notification

    org, users = tenants
    caller = users[1]

    def scopes(qs):
        return conjunction_scopes(qs.query.where, str(org.pk), str(caller.pk))

    # The check tells the two apart: organization only is not enough.
    assert scopes(Notification.objects.filter(organization=org)) == {"organization"}
    assert scopes(Notification.objects.filter(organization=org, recipient=caller)) == {"organization", "user"}

    checked, problems = 0, []
    for pattern, cls, actions, initkwargs in api_routes():
        if not hasattr(cls, "get_queryset"):
            continue
        for method in list(actions) or ["get"]:
            view = build_view(cls, actions, initkwargs, method, caller, pattern)
            try:
                qs = view.get_queryset()
            except AssertionError:
                continue
            if qs.model._meta.label_lower not in PERSONAL_MODELS:
                continue
            checked += 1
            if "user" not in scopes(qs):
                problems.append(f"{pattern} {cls.__name__}.{view.action or method}: {qs.query}")
    assert checked >= 5, checked  # the notification routes were found
    assert problems == [], "\n".join(problems)
