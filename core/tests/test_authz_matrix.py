"""Authorization matrix (OWASP API1 BOLA, API3, API5 BFLA): every route x method under /api/v1/
against nine actors, with the expected status of each.

The routes come from the URL conf: a new route (or a new method on one) without an entry in
``MATRIX`` fails ``test_matrix_covers_every_route``. Every case runs in a savepoint that is rolled
back, so each actor meets the same world; a denied case must answer the error envelope and
change nothing (fingerprint of the tenant tables before/after).
"""

import json
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core.tests.api_routes import api_views
from core.tests.authz_world import ACTORS, build_grant_world, build_world

pytestmark = pytest.mark.django_db

MEMBERS = [a for a in ACTORS if a != "anon"]
VIEWERS = {"requester", "assignee", "delegate", "auditor", "admin"}  # who can see alice's request


def expect(default, **over):
    """Expected status per actor: ``default`` for members, anon 401 unless overridden."""
    table = {a: default for a in MEMBERS}
    table["anon"] = 401
    table.update(over)
    return table


def only(allowed: dict, *, others=403, foreign=404, anon=401):
    """``allowed`` actors get their status; other members ``others``; the other org's admin ``foreign``."""
    table = {a: others for a in MEMBERS}
    table.update(anon=anon, foreign=foreign)
    table.update(allowed)
    return table


def visible(ok, *, hidden=404, **over):
    """Alice's request: viewers get ``ok``, everyone else of any org 404."""
    table = {a: (ok if a in VIEWERS else hidden) for a in MEMBERS}
    table["anon"] = 401
    table.update(over)
    return table


def _future(days=0, hours=0):
    return (timezone.now() + timedelta(days=days, hours=hours)).isoformat()


# (METHOD, route template) -> {"expect": {actor: status or (statuses)}, "kw": world -> url kwargs,
#                               "body": (world, actor) -> body, "multipart": bool, "query": str}
MATRIX = {
    # --- auth ---------------------------------------------------------------------------------
    ("POST", "auth/login/"): {
        "expect": expect(200),
        "body": lambda w, a: {
            "email": w.users[a].email if a != "anon" else "nobody@x.test",
            "password": w.passwords[a],
        },
        "public": True,
    },
    ("POST", "auth/refresh/"): {
        "expect": expect(200),
        "body": lambda w, a: {"refresh": str(RefreshToken.for_user(w.users[a])) if a != "anon" else "garbage"},
        "public": True,
    },
    ("POST", "auth/logout/"): {
        "expect": expect(204),
        "body": lambda w, a: {"refresh": str(RefreshToken.for_user(w.users[a])) if a != "anon" else "garbage"},
    },
    ("GET", "auth/me/"): {"expect": expect(200)},
    ("POST", "auth/password/change/"): {
        "expect": expect(204),
        "body": lambda w, a: {"old_password": w.passwords[a], "new_password": "Brand-New-Pass-2031"},
    },
    ("POST", "auth/logout/all/"): {"expect": expect(200)},
    ("POST", "auth/login/2fa/"): {
        "expect": expect(401, anon=401),  # a made-up mfa_token
        "body": lambda w, a: {"mfa_token": "made-up", "code": "123456"},
        "public": True,
    },
    ("POST", "auth/2fa/totp/"): {"expect": expect(201)},
    ("DELETE", "auth/2fa/totp/"): {
        "expect": expect(400),  # the wrong password
        "body": lambda w, a: {"password": "not-the-password", "code": "123456"},
    },
    ("POST", "auth/2fa/totp/confirm/"): {
        "expect": expect(409),  # no enrolment started
        "body": lambda w, a: {"code": "123456"},
    },
    ("GET", "auth/sessions/"): {"expect": expect(200)},
    ("DELETE", "auth/sessions/{pk}/"): {
        "expect": expect(404),  # nobody's session: another user's id is the same 404
        "kw": lambda w: {"pk": "00000000-0000-4000-8000-000000000001"},
    },
    ("POST", "auth/password/reset/"): {
        "expect": expect(202, anon=202),
        "body": lambda w, a: {"email": w.users[a].email if a != "anon" else "nobody@x.test"},
        "public": True,
    },
    ("POST", "auth/password/reset/confirm/"): {
        "expect": expect(400, anon=400),
        "body": lambda w, a: {"uid": "bm9ib2R5", "token": "abc-123", "new_password": "Brand-New-Pass-2031"},
        "public": True,
    },
    ("GET", "auth/oidc/{org_slug}/login/"): {
        "expect": expect(404, anon=404),  # the demo organization has no single sign-on configured
        "kw": lambda w: {"org_slug": "acme"},
        "public": True,
    },
    ("GET", "auth/oidc/callback/"): {
        "expect": expect(401, anon=401),  # no state/code: nothing to complete
        "public": True,
    },
    # --- users & roles ----------------------------------------------------------------------------
    ("GET", "users/"): {"expect": expect(200)},
    ("POST", "users/"): {
        "expect": only({"admin": 201}, foreign=201),
        "body": lambda w, a: {"email": f"new-{a}@x.test", "first_name": "N", "last_name": "U"},
    },
    ("GET", "users/{pk}/"): {"expect": expect(200, foreign=404), "kw": lambda w: {"pk": w.users["requester"].pk}},
    ("PUT", "users/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.users["requester"].pk},
        "body": lambda w, a: {"first_name": "Alicia", "last_name": "Anders", "title": "Lead"},
    },
    ("PATCH", "users/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.users["requester"].pk},
        "body": lambda w, a: {"title": "Lead"},
    },
    ("DELETE", "users/{pk}/"): {"expect": only({"admin": 204}), "kw": lambda w: {"pk": w.users["requester"].pk}},
    ("POST", "users/{pk}/reactivate/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.users["requester"].pk},
    },
    ("GET", "roles/"): {"expect": expect(200)},
    ("POST", "roles/"): {
        "expect": only({"admin": 201}, foreign=201),
        "body": lambda w, a: {"slug": "buyer", "name": "Buyer", "permissions": ["requests.create"]},
    },
    ("GET", "roles/{pk}/"): {"expect": expect(200, foreign=404), "kw": lambda w: {"pk": w.objs["custom_role"].pk}},
    ("PUT", "roles/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["custom_role"].pk},
        "body": lambda w, a: {"slug": "legal_approver", "name": "Legal", "permissions": ["requests.create"]},
    },
    ("PATCH", "roles/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["custom_role"].pk},
        "body": lambda w, a: {"name": "Legal team"},
    },
    ("DELETE", "roles/{pk}/"): {"expect": only({"admin": 204}), "kw": lambda w: {"pk": w.objs["custom_role"].pk}},
    ("GET", "roles/{pk}/members/"): {"expect": only({"admin": 200}), "kw": lambda w: {"pk": w.objs["custom_role"].pk}},
    ("POST", "roles/{pk}/members/"): {
        "expect": only({"admin": 201}),
        "kw": lambda w: {"pk": w.objs["custom_role"].pk},
        "body": lambda w, a: {"user": str(w.users["peer"].pk)},
    },
    ("DELETE", "roles/{pk}/members/{user_id}/"): {
        "expect": only({"admin": 204}),
        "kw": lambda w: {"pk": w.objs["requester_role"].pk, "user_id": w.users["peer"].pk},
    },
    # --- organization ---------------------------------------------------------------------------
    ("GET", "organizations/current/"): {"expect": expect(200)},
    ("PUT", "organizations/current/"): {
        "expect": only({"admin": 200}, foreign=200),
        "body": lambda w, a: {
            "name": "Renamed",
            "timezone": "Europe/Berlin",
            "work_days": [0, 1, 2, 3, 4],
            "work_start": "09:00",
            "work_end": "17:00",
        },
    },
    ("PATCH", "organizations/current/"): {
        "expect": only({"admin": 200}, foreign=200),
        "body": lambda w, a: {"name": "Renamed"},
    },
    ("GET", "departments/"): {"expect": expect(200)},
    ("POST", "departments/"): {
        "expect": only({"admin": 201}, foreign=201),
        "body": lambda w, a: {"name": "Procurement"},
    },
    ("GET", "departments/{pk}/"): {
        "expect": expect(200, foreign=404),
        "kw": lambda w: {"pk": w.objs["spare_department"].pk},
    },
    ("PUT", "departments/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["spare_department"].pk},
        "body": lambda w, a: {"name": "Spare parts"},
    },
    ("PATCH", "departments/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["spare_department"].pk},
        "body": lambda w, a: {"name": "Spare parts"},
    },
    ("DELETE", "departments/{pk}/"): {
        "expect": only({"admin": 204}),
        "kw": lambda w: {"pk": w.objs["spare_department"].pk},
    },
    ("GET", "holidays/"): {"expect": expect(200)},
    ("POST", "holidays/"): {
        "expect": only({"admin": 201}, foreign=201),
        "body": lambda w, a: {"date": "2031-01-01", "name": "New Year 2031"},
    },
    ("GET", "holidays/{pk}/"): {"expect": expect(200, foreign=404), "kw": lambda w: {"pk": w.objs["holiday"].pk}},
    ("PUT", "holidays/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["holiday"].pk},
        "body": lambda w, a: {"date": "2030-12-26", "name": "Boxing day 2030"},
    },
    ("PATCH", "holidays/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["holiday"].pk},
        "body": lambda w, a: {"name": "Xmas"},
    },
    ("DELETE", "holidays/{pk}/"): {"expect": only({"admin": 204}), "kw": lambda w: {"pk": w.objs["holiday"].pk}},
    # --- workflows -------------------------------------------------------------------------------
    ("GET", "workflows/"): {"expect": expect(200)},
    ("POST", "workflows/"): {
        "expect": only({"designer": 201, "admin": 201}, foreign=201),
        "body": lambda w, a: {
            "key": "travel",
            "name": "Travel",
            "form_schema": {"type": "object", "properties": {"days": {"type": "integer"}}},
            "steps": [{"stage": 1, "name": "Manager", "approver_type": "requester_manager", "mode": "any"}],
        },
    },
    ("GET", "workflows/{pk}/"): {"expect": expect(200, foreign=404), "kw": lambda w: {"pk": w.objs["workflow"].pk}},
    ("PUT", "workflows/{pk}/"): {
        "expect": only({"designer": 200, "admin": 200}),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
        "body": lambda w, a: {"name": "Purchases", "description": "", "category": "Finance", "is_active": True},
    },
    ("PATCH", "workflows/{pk}/"): {
        "expect": only({"designer": 200, "admin": 200}),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
        "body": lambda w, a: {"name": "Purchases"},
    },
    ("POST", "workflows/{pk}/migrate/"): {  # to the version it is on: 400 once allowed in
        "expect": only({"designer": 400, "admin": 400}),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
        "body": lambda w, a: dict.fromkeys(
            ("from_version", "to_version"), w.objs["workflow"].versions.get(status="published").number
        ),
    },
    ("DELETE", "workflows/{pk}/"): {
        "expect": only({"designer": 204, "admin": 204}),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
    },
    ("GET", "workflows/{pk}/draft/"): {
        "expect": only({"designer": 200, "admin": 200}),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
    },
    ("PUT", "workflows/{pk}/draft/"): {
        "expect": only({"designer": 200, "admin": 200}),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
        "body": lambda w, a: {"distinct_approvers": True},
    },
    ("POST", "workflows/{pk}/publish/"): {
        "expect": only({"designer": 200, "admin": 200}),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
    },
    ("GET", "workflows/{pk}/versions/"): {
        "expect": expect(200, foreign=404),
        "kw": lambda w: {"pk": w.objs["workflow"].pk},
    },
    # --- requests ----------------------------------------------------------------------------------
    ("GET", "requests/"): {"expect": expect(200)},
    ("POST", "requests/"): {
        "expect": expect(201, auditor=403, foreign=404),
        "body": lambda w, a: {"workflow": "purchase-request", "title": "New", "data": {"amount": 5, "vendor": "v"}},
    },
    ("POST", "requests/preview-route/"): {
        "expect": expect(200, auditor=403, foreign=404),
        "body": lambda w, a: {"workflow": "purchase-request", "data": {"amount": 6000, "vendor": "v"}},
    },
    ("GET", "requests/{pk}/"): {"expect": visible(200), "kw": lambda w: {"pk": w.objs["request"].pk}},
    ("PATCH", "requests/{pk}/"): {
        "expect": {**visible(404), "requester": 200, "auditor": 403, "admin": 403},
        "kw": lambda w: {"pk": w.objs["draft"].pk},
        "body": lambda w, a: {"title": "Draft v2"},
    },
    ("POST", "requests/{pk}/submit/"): {
        "expect": {**visible(404), "requester": 200, "auditor": 403, "admin": 403},
        "kw": lambda w: {"pk": w.objs["draft"].pk},
    },
    ("POST", "requests/{pk}/withdraw/"): {
        "expect": visible(403, requester=200),
        "kw": lambda w: {"pk": w.objs["request"].pk},
    },
    ("POST", "requests/{pk}/cancel/"): {
        "expect": visible(403, admin=200),
        "kw": lambda w: {"pk": w.objs["request"].pk},
        "body": lambda w, a: {"reason": "not needed"},
    },
    ("POST", "requests/{pk}/resubmit/"): {
        "expect": visible(403, requester=200),
        "kw": lambda w: {"pk": w.objs["returned"].pk},
        "body": lambda w, a: {"title": "Returned v2"},
    },
    ("GET", "requests/{pk}/timeline/"): {"expect": visible(200), "kw": lambda w: {"pk": w.objs["request"].pk}},
    ("GET", "requests/{pk}/comments/"): {"expect": visible(200), "kw": lambda w: {"pk": w.objs["request"].pk}},
    ("POST", "requests/{pk}/comments/"): {
        "expect": visible(201),
        "kw": lambda w: {"pk": w.objs["request"].pk},
        "body": lambda w, a: {"body": f"comment by {a}"},
    },
    ("GET", "requests/{pk}/attachments/"): {"expect": visible(200), "kw": lambda w: {"pk": w.objs["request"].pk}},
    ("POST", "requests/{pk}/attachments/"): {
        "expect": visible(201),
        "kw": lambda w: {"pk": w.objs["request"].pk},
        "body": lambda w, a: {"file": SimpleUploadedFile("note.txt", b"hello", content_type="text/plain")},
        "multipart": True,
    },
    ("GET", "requests/{pk}/attachments/{attachment_id}/download/"): {
        "expect": visible(200),
        "kw": lambda w: {"pk": w.objs["request"].pk, "attachment_id": w.objs["attachment"].pk},
    },
    # --- tasks & delegations ------------------------------------------------------------------------
    ("GET", "tasks/"): {"expect": expect(200)},
    ("POST", "tasks/bulk-approve/"): {
        "expect": expect(200),
        "body": lambda w, a: {"tasks": [str(w.objs["task"].pk)], "comment": ""},
    },
    ("GET", "tasks/{pk}/"): {
        "expect": only({"assignee": 200, "delegate": 200}, others=404),
        "kw": lambda w: {"pk": w.objs["task"].pk},
    },
    **{
        ("POST", f"tasks/{{pk}}/{what}/"): {
            "expect": visible(403, assignee=200, delegate=200),
            "kw": lambda w: {"pk": w.objs["task"].pk},
            "body": lambda w, a: {"comment": "decided"},
        }
        for what in ("approve", "reject", "request-changes")
    },
    ("POST", "tasks/{pk}/reassign/"): {
        "expect": visible(403, assignee=200, admin=200),
        "kw": lambda w: {"pk": w.objs["task"].pk},
        "body": lambda w, a: {"user": str(w.objs["frank"].pk)},
    },
    ("POST", "tasks/{pk}/retract/"): {  # nobody decided the world's task yet
        "expect": visible(403, assignee=409),
        "kw": lambda w: {"pk": w.objs["task"].pk},
        "body": lambda w, a: {"comment": "take it back"},
    },
    ("POST", "tasks/{pk}/assignees/"): {  # an assignee, a workflow admin (workflows.manage), tasks.manage
        "expect": visible(403, assignee=200, admin=200, designer=200),
        "kw": lambda w: {"pk": w.objs["task"].pk},
        "body": lambda w, a: {"user": str(w.objs["frank"].pk), "comment": "second look"},
    },
    ("GET", "delegations/"): {"expect": expect(200)},
    ("POST", "delegations/"): {
        "expect": expect(201, foreign=400),
        "body": lambda w, a: {"to_user": str(w.objs["frank"].pk), "starts_at": _future(1), "ends_at": _future(3)},
    },
    ("GET", "delegations/{pk}/"): {
        "expect": only({"assignee": 200}, others=404),
        "kw": lambda w: {"pk": w.objs["delegation"].pk},
    },
    ("PUT", "delegations/{pk}/"): {
        "expect": only({"assignee": 200}, others=404),
        "kw": lambda w: {"pk": w.objs["delegation"].pk},
        "body": lambda w, a: {"to_user": str(w.users["delegate"].pk), "starts_at": _future(1), "ends_at": _future(2)},
    },
    ("PATCH", "delegations/{pk}/"): {
        "expect": only({"assignee": 200}, others=404),
        "kw": lambda w: {"pk": w.objs["delegation"].pk},
        "body": lambda w, a: {"reason": "holiday"},
    },
    ("DELETE", "delegations/{pk}/"): {
        "expect": only({"assignee": 204}, others=404),
        "kw": lambda w: {"pk": w.objs["delegation"].pk},
    },
    # --- notifications ---------------------------------------------------------------------------------
    ("GET", "notifications/"): {"expect": expect(200)},
    ("POST", "notifications/read-all/"): {"expect": expect(200)},
    ("GET", "notifications/preferences/"): {"expect": expect(200)},
    ("PUT", "notifications/preferences/"): {
        "expect": expect(200),
        "body": lambda w, a: {"request_commented": {"email": False}},
    },
    ("GET", "notifications/{pk}/"): {
        "expect": only({"assignee": 200}, others=404),
        "kw": lambda w: {"pk": w.objs["notification"].pk},
    },
    ("POST", "notifications/{pk}/read/"): {
        "expect": only({"assignee": 200}, others=404),
        "kw": lambda w: {"pk": w.objs["notification"].pk},
    },
    # --- reports -----------------------------------------------------------------------------------------
    ("GET", "reports/summary/"): {"expect": only({"auditor": 200, "designer": 200, "admin": 200}, foreign=200)},
    ("GET", "reports/series/"): {"expect": only({"auditor": 200, "designer": 200, "admin": 200}, foreign=200)},
    # --- webhooks ----------------------------------------------------------------------------------------
    ("GET", "webhooks/"): {"expect": only({"admin": 200}, foreign=200)},
    ("POST", "webhooks/"): {
        "expect": only({"admin": 201}, foreign=201),
        "body": lambda w, a: {"url": "https://8.8.4.4/new", "events": ["request.approved"]},
    },
    ("GET", "webhooks/{pk}/"): {"expect": only({"admin": 200}), "kw": lambda w: {"pk": w.objs["webhook"].pk}},
    ("PUT", "webhooks/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["webhook"].pk},
        "body": lambda w, a: {"url": "https://8.8.8.8/other", "events": ["*"], "is_active": True},
    },
    ("PATCH", "webhooks/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["webhook"].pk},
        "body": lambda w, a: {"events": ["task.assigned"]},
    },
    ("DELETE", "webhooks/{pk}/"): {"expect": only({"admin": 204}), "kw": lambda w: {"pk": w.objs["webhook"].pk}},
    ("POST", "webhooks/{pk}/rotate-secret/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["webhook"].pk},
    },
    ("POST", "webhooks/{pk}/test/"): {"expect": only({"admin": 202}), "kw": lambda w: {"pk": w.objs["webhook"].pk}},
    ("GET", "webhooks/{pk}/deliveries/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["webhook"].pk},
    },
    ("GET", "webhook-deliveries/{pk}/"): {
        "expect": only({"admin": 200}),
        "kw": lambda w: {"pk": w.objs["webhook_delivery"].pk},
    },
    ("POST", "webhook-deliveries/{pk}/redeliver/"): {
        "expect": only({"admin": 202}),
        "kw": lambda w: {"pk": w.objs["webhook_delivery"].pk},
    },
    # --- audit log ---------------------------------------------------------------------------------------
    ("GET", "audit-logs/"): {"expect": only({"auditor": 200, "admin": 200}, foreign=200)},
    ("GET", "requests/export/"): {"expect": expect(200), "query": "?format=csv"},  # what each may see
    ("GET", "audit-logs/export/"): {
        "expect": only({"auditor": 200, "admin": 200}, foreign=200),
        "query": "?format=jsonl",
    },
    ("GET", "audit-logs/verify/"): {"expect": only({"auditor": 200, "admin": 200}, foreign=200)},
    ("GET", "audit-logs/{pk}/"): {
        "expect": only({"auditor": 200, "admin": 200}),
        "kw": lambda w: {"pk": w.objs["audit"].pk},
    },
}

# Known findings in other apps' endpoints: (METHOD, template) -> {actor: (status seen, reason)}.
# Each has a strict xfail test below asserting the right behaviour; remove both when fixed.
KNOWN_FINDINGS: dict = {}


# --- routes from the URL conf ----------------------------------------------------------------------


def _template(regex: str) -> str:
    t = regex.lstrip("^").rstrip("$")
    t = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", t)
    t = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", t)  # path converters: <uuid:pk> -> {pk}
    return t.replace("\\.", ".")


def url_routes() -> set[tuple[str, str]]:
    """Every (METHOD, template) the API answers (the catch-all 404 excluded)."""
    routes = set()
    for route, p, cls in api_views():
        template = _template(route)
        actions = getattr(p.callback, "actions", None)
        if actions:
            methods = [m for m in actions if m not in {"head", "options"}]
        else:
            methods = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]
        for m in methods:
            routes.add((m.upper(), template))
    return routes


def test_matrix_covers_every_route():
    routes = url_routes()
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"routes without an authorization entry: {missing}"
    assert not stale, f"entries for routes that no longer exist: {stale}"
    for key, spec in MATRIX.items():
        assert set(spec["expect"]) == set(ACTORS), key


# --- running it ------------------------------------------------------------------------------------------


class _Rollback(Exception):
    pass


def _fingerprint():
    from accounts.models import Role, RoleMembership, User
    from approvals.models import ApprovalTask, Assignment, Delegation
    from auditlogs.models import AuditLog
    from notifications.models import Notification, NotificationPreference
    from organizations.models import Department, Holiday, Organization
    from requests.models import Attachment, Comment, Request
    from workflows.models import WorkflowDefinition, WorkflowVersion

    return (
        AuditLog.objects.count(),
        tuple(Request.all_objects.order_by("pk").values_list("pk", "status", "title", "round", "deleted_at")),
        tuple(ApprovalTask.objects.order_by("pk").values_list("pk", "status")),
        tuple(Assignment.objects.order_by("pk").values_list("pk", "decision", "is_active", "assignee_id")),
        tuple(Delegation.objects.order_by("pk").values_list("pk", "to_user_id", "reason", "starts_at")),
        tuple(
            User.objects.order_by("pk").values_list(
                "pk", "is_active", "title", "first_name", "password", "is_staff", "is_superuser"
            )
        ),
        tuple(Role.objects.order_by("pk").values_list("pk", "name", "slug", "permissions")),
        RoleMembership.objects.count(),
        tuple(Department.objects.order_by("pk").values_list("pk", "name")),
        tuple(Holiday.objects.order_by("pk").values_list("pk", "name", "date")),
        tuple(Organization.objects.order_by("pk").values_list("pk", "name")),
        tuple(WorkflowDefinition.all_objects.order_by("pk").values_list("pk", "name", "deleted_at")),
        tuple(WorkflowVersion.objects.order_by("pk").values_list("pk", "status", "distinct_approvers")),
        tuple(Notification.objects.order_by("pk").values_list("pk", "read_at")),
        NotificationPreference.objects.count(),
        Comment.objects.count(),
        Attachment.objects.count(),
    )


def _call(world, actor, method, template, spec):
    kwargs = spec.get("kw", lambda w: {})(world)
    path = "/api/v1/" + template.format(**{k: str(v) for k, v in kwargs.items()}) + spec.get("query", "")
    body = spec["body"](world, actor) if "body" in spec else None
    client = APIClient()
    user = world.users[actor]
    if user is not None and not spec.get("public"):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    send = getattr(client, method.lower())
    if body is None:
        return send(path)
    return send(path, body, format="multipart" if spec.get("multipart") else "json")


def run_case(world, actor, method, template, spec, before):
    """(status, problem or None); the case's changes are rolled back (``before``: the world's fingerprint)."""
    outcome = {}
    try:
        with transaction.atomic():
            response = _call(world, actor, method, template, spec)
            outcome["status"] = response.status_code
            if response.status_code >= 400:
                body = response.json()
                if set(body) != {"error"} or not {"code", "message", "details"} <= set(body["error"]):
                    outcome["problem"] = f"not the error envelope: {body}"
                elif not spec.get("public") and _fingerprint() != before:
                    outcome["problem"] = "a denied call changed data"
            raise _Rollback
    except _Rollback:
        pass
    return outcome["status"], outcome.get("problem")


@pytest.fixture
def world(db):
    return build_world()


# The matrix is the suite's longest run: in shards (every route in exactly one), pytest-xdist runs them
# side by side. test_matrix_covers_every_route checks that MATRIX holds every route.
SHARDS = 4


@pytest.mark.parametrize("shard", range(SHARDS))
def test_authorization_matrix(world, settings, shard):
    settings.LOGIN_RATE_PER_IP = "1000/m"
    mismatches, known_seen, cases = [], [], 0
    before = _fingerprint()
    keys = sorted(MATRIX)[shard::SHARDS]
    for method, template in keys:
        spec = MATRIX[(method, template)]
        for actor in ACTORS:
            expected = spec["expect"][actor]
            status, problem = run_case(world, actor, method, template, spec, before)
            cases += 1
            allowed = expected if isinstance(expected, tuple) else (expected,)
            known = KNOWN_FINDINGS.get((method, template), {}).get(actor)
            if known and status == known[0]:
                known_seen.append((method, template, actor))
                continue
            if status not in allowed:
                mismatches.append(f"{method} {template} as {actor}: expected {expected}, got {status}")
            elif problem:
                mismatches.append(f"{method} {template} as {actor}: {problem}")
    assert keys and cases == len(keys) * len(ACTORS)
    assert not mismatches, f"{len(mismatches)} of {cases} cases:\n" + "\n".join(mismatches)


# --- generated: every permission code x every path that grants ---------------------------------------
#
# For each catalog code X the actor holds every other code (``lacks[X]``; ``lacks_staff[X]`` for the
# admin) and tries to hand X out through each path: to someone else, to themselves, or into a role
# (theirs or another). Every attempt must answer 403 and change nothing. The flag paths try to set
# ``is_staff`` as someone who is not an organization admin. The same paths granting a code the actor
# holds succeed (positive controls), so the refusals are not a broken path.

USERS = "/api/v1/users/"
ROLES = "/api/v1/roles/"


def _bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _form_data(form) -> dict:
    """What the browser would post back for ``form`` as rendered."""
    data = {}
    for name, f in form.fields.items():
        value = form[name].value()
        if f.disabled or value is None or value is False:
            continue
        key = form.add_prefix(name)
        if value is True:
            data[key] = "on"
        elif isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        else:
            data[key] = str(value)
    return data


def _admin_post(user, url: str, edit):
    """Open an admin form as ``user``, apply ``edit(data)`` and post it back; None when the form
    does not offer what ``edit`` changes (``edit`` answers False)."""
    client = Client()
    client.force_login(user)
    page = client.get(url)
    if page.status_code != 200:
        return page
    data = _form_data(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        data.update(_form_data(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(_form_data(form))
    if edit(data) is False:
        return None
    return client.post(url, data)


def _add_membership(role):
    def edit(data):
        prefix = "role_memberships"
        if f"{prefix}-TOTAL_FORMS" not in data:
            return False  # the inline is not offered to this actor
        n = int(data[f"{prefix}-TOTAL_FORMS"])
        data[f"{prefix}-TOTAL_FORMS"] = str(n + 1)
        data[f"{prefix}-{n}-role"] = str(role.pk)

    return edit


def _with_code(code):
    def edit(data):
        data["permissions"] = json.dumps(sorted({*json.loads(data["permissions"]), code}))

    return edit


# name -> (w, g, by, carrier role, code) -> response. ``by`` is an API user or, for admin paths, a staff one.
GRANT_PATHS = {
    "api: create a user with the role": lambda w, g, by, role, code: _bearer(by).post(
        USERS, {"email": "granted@acme.example", "role_slugs": [role.slug]}, format="json"
    ),
    "api: add someone to the role": lambda w, g, by, role, code: _bearer(by).post(
        f"{ROLES}{role.pk}/members/", {"user": str(w.users["peer"].pk)}, format="json"
    ),
    "api: add oneself to the role": lambda w, g, by, role, code: _bearer(by).post(
        f"{ROLES}{role.pk}/members/", {"user": str(by.pk)}, format="json"
    ),
    "api: create a role with the code": lambda w, g, by, role, code: _bearer(by).post(
        ROLES, {"slug": "granted", "name": "Granted", "permissions": [code]}, format="json"
    ),
    "api: put the code into one's own role": lambda w, g, by, role, code: _bearer(by).put(
        f"{ROLES}{by.role_memberships.get().role_id}/",
        {
            "slug": by.role_memberships.get().role.slug,
            "name": "Mine",
            "permissions": sorted({*by.role_memberships.get().role.permissions, code}),
        },
        format="json",
    ),
    "api: patch the code into another role": lambda w, g, by, role, code: _bearer(by).patch(
        f"{ROLES}{g.empty.pk}/", {"permissions": [code]}, format="json"
    ),
    "admin: membership inline on someone else": lambda w, g, by, role, code: _admin_post(
        by, f"/admin/accounts/user/{w.users['peer'].pk}/change/", _add_membership(role)
    ),
    "admin: membership inline on oneself": lambda w, g, by, role, code: _admin_post(
        by, f"/admin/accounts/user/{by.pk}/change/", _add_membership(role)
    ),
    "admin: put the code into a role": lambda w, g, by, role, code: _admin_post(
        by, f"/admin/accounts/role/{g.empty.pk}/change/", _with_code(code)
    ),
    "admin: create a role with the code": lambda w, g, by, role, code: _admin_post(
        by,
        "/admin/accounts/role/add/",
        lambda data: data.update(slug="granted", name="Granted", permissions=json.dumps([code])),
    ),
}

# name -> (w, by) -> response: setting is_staff (admin-site access) as a non organization admin.
FLAG_PATHS = {
    "api: create a staff user": lambda w, by: _bearer(by).post(
        USERS, {"email": "staffer@acme.example", "is_staff": True}, format="json"
    ),
    "api: make oneself staff": lambda w, by: _bearer(by).patch(f"{USERS}{by.pk}/", {"is_staff": True}, format="json"),
    "api: make someone staff": lambda w, by: _bearer(by).patch(
        f"{USERS}{w.users['peer'].pk}/", {"is_staff": True}, format="json"
    ),
    "admin: make someone staff": lambda w, by: _admin_post(
        by, f"/admin/accounts/user/{w.users['peer'].pk}/change/", lambda data: data.update(is_staff="on")
    ),
}


def _in_savepoint(call):
    """The response of ``call()`` and whether the database changed; everything is rolled back."""
    outcome = {}
    try:
        with transaction.atomic():
            before = _fingerprint()
            response = call()
            outcome.update(response=response, changed=_fingerprint() != before)
            raise _Rollback
    except _Rollback:
        pass
    return outcome["response"], outcome["changed"]


def _refusal_problem(response, changed) -> str | None:
    if response is None:
        return None  # the path is not even offered to this actor
    if response.status_code != 403:
        return f"answered {response.status_code}"
    if changed:
        return "the refusal changed data"
    if response["Content-Type"].startswith("application/json") and set(response.json()) != {"error"}:
        return f"not the error envelope: {response.json()}"
    return None


@pytest.fixture
def grant_world(world):
    return build_grant_world(world)


@pytest.mark.parametrize("shard", range(SHARDS))
def test_nobody_grants_a_permission_they_lack_generated(world, grant_world, shard):
    from accounts.catalog import ALL_CODES

    g, problems, cases = grant_world, [], 0
    codes = sorted(ALL_CODES)[shard::SHARDS]  # every code in exactly one shard
    for code in codes:
        for name, path in GRANT_PATHS.items():
            by = g.lacks_staff[code] if name.startswith("admin") else g.lacks[code]
            response, changed = _in_savepoint(lambda: path(world, g, by, g.carrier[code], code))
            cases += 1
            if problem := _refusal_problem(response, changed):
                problems.append(f"{code} via {name!r}: {problem}")
        for name, path in FLAG_PATHS.items():
            by = g.lacks_staff[code] if name.startswith("admin") else g.lacks[code]
            response, changed = _in_savepoint(lambda: path(world, by))
            cases += 1
            if problem := _refusal_problem(response, changed):
                problems.append(f"is_staff as one lacking {code} via {name!r}: {problem}")
    assert codes and cases == len(codes) * (len(GRANT_PATHS) + len(FLAG_PATHS))
    assert not problems, f"{len(problems)} of {cases} cases:\n" + "\n".join(problems)


def test_the_grant_paths_work_for_codes_one_holds(world, grant_world):
    """Positive controls: the same paths succeed when the granted code is one the actor holds."""
    from accounts.catalog import REPORTS_VIEW, REQUESTS_CREATE

    g, failures = grant_world, []
    for name, path in GRANT_PATHS.items():
        by = (g.lacks_staff if name.startswith("admin") else g.lacks)[REPORTS_VIEW]
        response, changed = _in_savepoint(lambda: path(world, g, by, g.carrier[REQUESTS_CREATE], REQUESTS_CREATE))
        if response is None or response.status_code not in (200, 201, 302) or not changed:
            failures.append(f"{name}: {getattr(response, 'status_code', 'not offered')}, changed={changed}")
    admin = world.users["admin"]
    for name, path in FLAG_PATHS.items():
        if "oneself" in name:
            continue  # the organization admin is staff already; raising oneself is never allowed
        response, changed = _in_savepoint(lambda: path(world, admin))
        if response.status_code not in (200, 201, 302) or not changed:
            failures.append(f"{name} by the org admin: {response.status_code}, changed={changed}")
    assert not failures, "\n".join(failures)


# --- access tokens die with the session (logout, password change, deactivation) ----------------------


def _revoke_by_logout(world, user, tokens):
    return _bearer_access(tokens["access"]).post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json")


def _revoke_by_password_change(world, user, tokens):
    return _bearer_access(tokens["access"]).post(
        "/api/v1/auth/password/change/",
        {"old_password": world.passwords["requester"], "new_password": "Brand-New-Pass-2031"},
        format="json",
    )


def _revoke_by_deactivation(world, user, tokens):
    admin = _bearer(world.users["admin"])
    response = admin.delete(f"/api/v1/users/{user.pk}/")
    # Reactivated at once: the tokens issued before stay dead all the same.
    assert admin.post(f"/api/v1/users/{user.pk}/reactivate/").status_code == 200
    return response


REVOCATIONS = {
    "logout": _revoke_by_logout,
    "password change": _revoke_by_password_change,
    "deactivation": _revoke_by_deactivation,
}


def _bearer_access(access) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_access_tokens_die_with_the_session(world, settings):
    """Issue 19.3: after each event, the access token issued before it answers 401 on every route
    the requester could read with it a moment earlier."""
    settings.LOGIN_RATE_PER_ACCOUNT = "1000/m"
    alice = world.users["requester"]
    readable = sorted(
        (template, spec)
        for (method, template), spec in MATRIX.items()
        if method == "GET" and spec["expect"]["requester"] == 200 and not spec.get("public")
    )
    assert len(readable) > 10
    failures = []
    for event, revoke in REVOCATIONS.items():
        try:
            with transaction.atomic():
                login = APIClient().post(
                    "/api/v1/auth/login/", {"email": alice.email, "password": world.passwords["requester"]}
                )
                tokens = login.json()
                client = _bearer_access(tokens["access"])
                assert client.get("/api/v1/auth/me/").status_code == 200
                assert revoke(world, alice, tokens).status_code in (200, 204), event
                for template, spec in readable:
                    kwargs = spec.get("kw", lambda w: {})(world)
                    path = "/api/v1/" + template.format(**{k: str(v) for k, v in kwargs.items()})
                    response = client.get(path + spec.get("query", ""))
                    if response.status_code != 401:
                        failures.append(f"after {event}: GET {template} answered {response.status_code}")
                raise _Rollback
        except _Rollback:
            pass
    assert not failures, "\n".join(failures)
