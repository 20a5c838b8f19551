"""Mass assignment (OWASP API3): read-only and server-owned fields sent on writes are ignored or
rejected, on every writable endpoint; the stored row keeps the server's values.

Each write is sent with the fields an attacker would try (status, organization, requester,
version, decisions, hashes, reference, ids, timestamps, privilege flags), then the row is read
back from the database.
"""

import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from core.testing import api_client
from core.tests.authz_world import build_world

pytestmark = pytest.mark.django_db

FOREIGN_ID = str(uuid.uuid4())
PAST = "2001-01-01T00:00:00Z"


@pytest.fixture
def w():
    return build_world()


def client(w, actor):
    return api_client(w.users[actor])


def ignored_or_rejected(response, ok=(200, 201)):
    """2xx (the extra fields were ignored: the caller checks the row) or a 400 envelope."""
    assert response.status_code in (*ok, 400), response.content
    if response.status_code == 400:
        assert set(response.json()) == {"error"}
    return response.status_code != 400


def foreign_org(w):
    return str(w.users["foreign"].organization_id)


# --- users, roles, organization ------------------------------------------------------------------


def test_user_create_and_update_ignore_privilege_and_ownership_fields(w):
    from accounts.models import User

    admin = client(w, "admin")
    r = admin.post(
        "/api/v1/users/",
        {
            "email": "mallory@acme.example",
            "id": FOREIGN_ID,
            "organization": foreign_org(w),
            "is_superuser": True,
            "is_active": False,
            "date_joined": PAST,
            "deactivated_at": PAST,
            "last_login": PAST,
        },
        format="json",
    )
    if ignored_or_rejected(r):
        user = User.objects.get(email="mallory@acme.example")
        assert str(user.pk) != FOREIGN_ID
        assert user.organization_id == w.objs["acme"].pk
        assert not user.is_superuser and user.is_active and user.deactivated_at is None
        assert user.date_joined.year > 2001 and user.last_login is None

    alice = w.users["requester"]
    before = User.objects.get(pk=alice.pk)
    for method in ("put", "patch"):
        r = getattr(admin, method)(
            f"/api/v1/users/{alice.pk}/",
            {
                "first_name": "Alice",
                "last_name": "Anders",
                "email": "owned@evil.test",
                "organization": foreign_org(w),
                "is_superuser": True,
                "is_active": False,
                "password": "plain-text-password",
                "date_joined": PAST,
                "roles": ["org_admin"],
            },
            format="json",
        )
        if ignored_or_rejected(r):
            after = User.objects.get(pk=alice.pk)
            assert after.email == before.email
            assert after.organization_id == before.organization_id
            assert not after.is_superuser and after.is_active
            assert after.password == before.password
            assert after.date_joined == before.date_joined
            assert sorted(after.role_slugs) == sorted(before.role_slugs)


def test_a_user_cannot_raise_their_own_privileges(w):
    """Self-service endpoints take no role, staff or organization input."""
    from accounts.models import User

    alice = w.users["requester"]
    me = client(w, "requester")
    r = me.patch(f"/api/v1/users/{alice.pk}/", {"is_staff": True}, format="json")
    assert r.status_code == 403
    r = me.post(f"/api/v1/roles/{w.objs['requester_role'].pk}/members/", {"user": str(alice.pk)}, format="json")
    assert r.status_code == 403
    after = User.objects.get(pk=alice.pk)
    assert not after.is_staff and after.role_slugs == alice.role_slugs


def test_role_writes_ignore_builtin_and_organization(w):
    from accounts.models import Role

    admin = client(w, "admin")
    r = admin.post(
        "/api/v1/roles/",
        {"slug": "buyer", "name": "Buyer", "is_builtin": True, "organization": foreign_org(w), "id": FOREIGN_ID},
        format="json",
    )
    if ignored_or_rejected(r):
        role = Role.objects.get(slug="buyer")
        assert not role.is_builtin and role.organization_id == w.objs["acme"].pk and str(role.pk) != FOREIGN_ID
    custom = w.objs["custom_role"]
    r = admin.patch(f"/api/v1/roles/{custom.pk}/", {"is_builtin": True, "organization": foreign_org(w)}, format="json")
    if ignored_or_rejected(r):
        custom.refresh_from_db()
        assert not custom.is_builtin and custom.organization_id == w.objs["acme"].pk
    # Built-in roles keep their slug (and cannot be deleted) whatever is sent.
    builtin = w.objs["requester_role"]
    r = admin.patch(f"/api/v1/roles/{builtin.pk}/", {"slug": "owned"}, format="json")
    assert r.status_code == 400
    builtin.refresh_from_db()
    assert builtin.slug == "requester"


def test_organization_department_holiday_writes_ignore_ids_and_organization(w):
    from organizations.models import Department, Holiday, Organization

    admin = client(w, "admin")
    acme = w.objs["acme"]
    r = admin.patch(
        "/api/v1/organizations/current/",
        {"slug": "owned", "id": FOREIGN_ID, "created_at": PAST, "name": "Acme Corp"},
        format="json",
    )
    if ignored_or_rejected(r):
        org = Organization.objects.get(pk=acme.pk)
        assert org.slug == "acme" and org.created_at.year > 2001
    r = admin.post(
        "/api/v1/departments/", {"name": "Ops 2", "organization": foreign_org(w), "id": FOREIGN_ID}, format="json"
    )
    if ignored_or_rejected(r, ok=(201,)):
        dept = Department.objects.get(name="Ops 2")
        assert dept.organization_id == acme.pk and str(dept.pk) != FOREIGN_ID
    r = admin.post(
        "/api/v1/holidays/",
        {"date": "2031-05-01", "name": "May day", "organization": foreign_org(w), "id": FOREIGN_ID},
        format="json",
    )
    if ignored_or_rejected(r, ok=(201,)):
        holiday = Holiday.objects.get(name="May day")
        assert holiday.organization_id == acme.pk and str(holiday.pk) != FOREIGN_ID
    # A department cannot point at another organization's user or department.
    globex_admin = w.users["foreign"]
    r = admin.post("/api/v1/departments/", {"name": "Leaky", "head": str(globex_admin.pk)}, format="json")
    assert r.status_code == 400
    assert not Department.objects.filter(name="Leaky").exists()


# --- workflows ------------------------------------------------------------------------------------------


def test_workflow_writes_ignore_status_version_and_organization(w):
    from workflows.models import VersionStatus, WorkflowDefinition

    designer = client(w, "designer")
    r = designer.post(
        "/api/v1/workflows/",
        {
            "key": "travel",
            "name": "Travel",
            "organization": foreign_org(w),
            "id": FOREIGN_ID,
            "status": "published",
            "version": 7,
            "number": 7,
            "created_by": str(w.users["admin"].pk),
            "published_version": {"number": 9},
            "form_schema": {"type": "object", "properties": {}},
            "steps": [{"stage": 1, "name": "M", "approver_type": "requester_manager", "mode": "any"}],
        },
        format="json",
    )
    if ignored_or_rejected(r, ok=(201,)):
        d = WorkflowDefinition.objects.get(key="travel")
        assert d.organization_id == w.objs["acme"].pk and str(d.pk) != FOREIGN_ID
        assert d.created_by_id == w.users["designer"].pk
        versions = list(d.versions.values_list("number", "status"))
        assert versions == [(1, VersionStatus.DRAFT)]

    wf = w.objs["workflow"]
    published = wf.versions.get(status=VersionStatus.PUBLISHED)
    r = designer.put(
        f"/api/v1/workflows/{wf.pk}/draft/",
        {"status": "published", "number": 1, "organization": foreign_org(w), "published_at": PAST},
        format="json",
    )
    if ignored_or_rejected(r):
        draft = wf.versions.get(status=VersionStatus.DRAFT)
        assert draft.number == published.number + 1 and draft.published_at is None
        assert draft.organization_id == w.objs["acme"].pk
        assert wf.versions.get(status=VersionStatus.PUBLISHED).pk == published.pk
    r = designer.patch(
        f"/api/v1/workflows/{wf.pk}/", {"key": "owned", "organization": foreign_org(w), "id": FOREIGN_ID}, format="json"
    )
    if ignored_or_rejected(r):
        wf.refresh_from_db()
        assert wf.key == "purchase-request" and wf.organization_id == w.objs["acme"].pk


# --- requests ----------------------------------------------------------------------------------------------

REQUEST_ATTACK = {
    "status": "approved",
    "organization": None,  # filled per test
    "requester": None,
    "reference": "PUR-HACKED",
    "current_stage": 3,
    "round": 9,
    "submitted_at": PAST,
    "completed_at": PAST,
    "workflow_version": FOREIGN_ID,
    "version": 1,
    "definition": FOREIGN_ID,
    "department": FOREIGN_ID,
    "tasks": [{"status": "approved"}],
    "decisions": ["approved"],
    "id": FOREIGN_ID,
}


def _attack(w, **extra):
    return {**REQUEST_ATTACK, "organization": foreign_org(w), "requester": str(w.users["admin"].pk), **extra}


def test_request_create_update_resubmit_ignore_server_fields(w):
    from requests.models import Request, RequestStatus

    alice = w.users["requester"]
    me = client(w, "requester")
    r = me.post(
        "/api/v1/requests/",
        _attack(w, workflow="purchase-request", title="Chair", data={"amount": 1, "vendor": "v"}),
        format="json",
    )
    if ignored_or_rejected(r, ok=(201,)):
        req = Request.objects.get(title="Chair")
        assert req.status == RequestStatus.DRAFT and req.requester_id == alice.pk
        assert req.organization_id == alice.organization_id and req.reference != "PUR-HACKED"
        assert req.round == 1 and req.current_stage in (0, None) and req.submitted_at is None
        assert req.completed_at is None and str(req.pk) != FOREIGN_ID
        assert req.workflow_version.definition_id == w.objs["workflow"].pk

    draft = w.objs["draft"]
    snapshot = Request.objects.filter(pk=draft.pk).values().get()
    r = me.patch(f"/api/v1/requests/{draft.pk}/", _attack(w, title="Draft v2"), format="json")
    if ignored_or_rejected(r):
        after = Request.objects.filter(pk=draft.pk).values().get()
        for field in ("status", "organization_id", "requester_id", "reference", "round", "workflow_version_id"):
            assert after[field] == snapshot[field], field
        assert after["title"] == "Draft v2"

    returned = w.objs["returned"]
    snapshot = Request.objects.filter(pk=returned.pk).values().get()
    r = me.post(f"/api/v1/requests/{returned.pk}/resubmit/", _attack(w, title="Again"), format="json")
    if ignored_or_rejected(r):
        after = Request.objects.filter(pk=returned.pk).values().get()
        assert after["status"] == RequestStatus.PENDING  # the state machine's answer, not the body's
        assert after["round"] == snapshot["round"] + 1
        for field in ("organization_id", "requester_id", "reference", "workflow_version_id"):
            assert after[field] == snapshot[field], field


def test_comment_and_attachment_ignore_author_request_and_file_facts(w):
    from requests.models import Attachment, Comment

    me = client(w, "requester")
    request = w.objs["request"]
    r = me.post(
        f"/api/v1/requests/{request.pk}/comments/",
        {
            "body": "hello",
            "author": str(w.users["admin"].pk),
            "request": str(w.objs["draft"].pk),
            "organization": foreign_org(w),
            "round": 5,
            "id": FOREIGN_ID,
        },
        format="json",
    )
    if ignored_or_rejected(r, ok=(201,)):
        comment = Comment.objects.get(body="hello")
        assert comment.author_id == w.users["requester"].pk and comment.request_id == request.pk
        assert comment.organization_id == request.organization_id and comment.round == request.round

    r = me.post(
        f"/api/v1/requests/{request.pk}/attachments/",
        {
            "file": SimpleUploadedFile("doc.txt", b"twelve bytes", content_type="text/plain"),
            "size": 1,
            "sha256": "0" * 64,
            "content_type": "application/pdf",
            "uploaded_by": str(w.users["admin"].pk),
            "name": "../../evil.sh",
            "organization": foreign_org(w),
        },
        format="multipart",
    )
    if ignored_or_rejected(r, ok=(201,)):
        att = Attachment.objects.get(request=request, name="doc.txt")
        assert att.size == 12 and att.sha256 != "0" * 64 and len(att.sha256) == 64
        assert att.content_type == "text/plain" and att.uploaded_by_id == w.users["requester"].pk
        assert att.organization_id == request.organization_id


# --- tasks and delegations -------------------------------------------------------------------------------------


def test_decisions_take_their_value_from_the_route_not_the_body(w):
    from approvals.models import Assignment, Decision

    task = w.objs["task"]
    r = client(w, "assignee").post(
        f"/api/v1/tasks/{task.pk}/approve/",
        {
            "comment": "fine",
            "decision": "rejected",
            "status": "rejected",
            "on_behalf_of": str(w.users["admin"].pk),
            "assignee": str(w.users["admin"].pk),
            "decided_at": PAST,
        },
        format="json",
    )
    if ignored_or_rejected(r):
        a = Assignment.objects.get(task=task, assignee=w.users["assignee"])
        assert a.decision == Decision.APPROVED and a.on_behalf_of_id is None and a.decided_at.year > 2001
        task.refresh_from_db()
        assert task.status == "approved"


def test_delegations_are_always_from_the_caller(w):
    from approvals.models import Delegation

    me = client(w, "peer")
    now = timezone.now()
    r = me.post(
        "/api/v1/delegations/",
        {
            "to_user": str(w.objs["frank"].pk),
            "starts_at": (now + timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=2)).isoformat(),
            "from_user": str(w.users["assignee"].pk),  # make mark's tasks mine-to-give
            "organization": foreign_org(w),
            "id": FOREIGN_ID,
        },
        format="json",
    )
    if ignored_or_rejected(r, ok=(201,)):
        d = Delegation.objects.get(to_user=w.objs["frank"])
        assert d.from_user_id == w.users["peer"].pk and d.organization_id == w.objs["acme"].pk
    mine = w.objs["delegation"]
    r = client(w, "assignee").patch(
        f"/api/v1/delegations/{mine.pk}/",
        {"from_user": str(w.users["peer"].pk), "organization": foreign_org(w), "reason": "trip"},
        format="json",
    )
    if ignored_or_rejected(r):
        mine.refresh_from_db()
        assert mine.from_user_id == w.users["assignee"].pk and mine.organization_id == w.objs["acme"].pk


def test_notification_read_ignores_recipient(w):
    from notifications.models import Notification

    n = w.objs["notification"]
    r = client(w, "assignee").post(
        f"/api/v1/notifications/{n.pk}/read/", {"recipient": str(w.users["requester"].pk)}, format="json"
    )
    assert r.status_code == 200
    n.refresh_from_db()
    assert n.recipient_id == w.users["assignee"].pk and n.read_at is not None
    assert not Notification.objects.filter(recipient=w.users["requester"], read_at__isnull=False).exists()


# --- audit rows: no write path at all ---------------------------------------------------------------------------------


def test_audit_rows_cannot_be_written_through_the_api(w):
    from auditlogs.models import AuditLog

    auditor = client(w, "admin")
    row = w.objs["audit"]
    before = AuditLog.objects.count()
    attempts = [
        auditor.post("/api/v1/audit-logs/", {"action": "x", "hash": "0" * 64}, format="json"),
        auditor.put(f"/api/v1/audit-logs/{row.pk}/", {"action": "x", "prev_hash": "0" * 64}, format="json"),
        auditor.patch(f"/api/v1/audit-logs/{row.pk}/", {"hash": "0" * 64, "sequence": 1}, format="json"),
        auditor.delete(f"/api/v1/audit-logs/{row.pk}/"),
    ]
    for r in attempts:
        assert r.status_code == 405, r.content
        assert set(r.json()) == {"error"}
    assert AuditLog.objects.count() == before
    fresh = AuditLog.objects.get(pk=row.pk)
    assert (fresh.hash, fresh.prev_hash, fresh.sequence, fresh.action) == (
        row.hash,
        row.prev_hash,
        row.sequence,
        row.action,
    )


def test_tokens_carry_no_trusted_claims_beyond_the_user_id(w):
    """A refresh token whose claims were edited (e.g. another org) is refused: the signature covers them."""
    token = RefreshToken.for_user(w.users["requester"])
    header, payload, sig = str(token).split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = str(w.users["admin"].pk)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    r = api_client().post("/api/v1/auth/refresh/", {"refresh": f"{header}.{forged}.{sig}"}, format="json")
    assert r.status_code == 401
