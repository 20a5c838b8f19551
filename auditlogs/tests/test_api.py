"""GET audit-logs/ (filters, permission, tenancy, query count) and GET audit-logs/verify/."""

import datetime as dt

import pytest
from django.utils import timezone

from auditlogs.models import AuditLog
from auditlogs.services import audit_record
from auditlogs.tests.factories import bulk_chain, org_rows, raw, triggers_disabled
from core.testing import api_client, error_code, make_user

pytestmark = pytest.mark.django_db

LIST = "/api/v1/audit-logs/"
VERIFY = "/api/v1/audit-logs/verify/"


@pytest.fixture
def auditor(org):
    return make_user(org, "auditor@acme-test.test", roles=["auditor"])


def test_list_shape_newest_first(org, auditor, admin_user):
    audit_record(action="test.one", actor=admin_user, organization=org, target=admin_user, changes={"a": [1, 2]})
    response = api_client(auditor).get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == org_rows(org).count()
    first = body["results"][0]
    assert {
        "id",
        "sequence",
        "action",
        "actor",
        "target_type",
        "target_id",
        "target_repr",
        "changes",
        "created_at",
    } <= set(first)
    # Newest first; the last write here was the auditor's own creation (user.created/role.member_added).
    sequences = [r["sequence"] for r in body["results"]]
    assert sequences == sorted(sequences, reverse=True)
    row = next(r for r in body["results"] if r["action"] == "test.one")
    assert row["actor"] == {"id": str(admin_user.pk), "email": admin_user.email}
    assert row["target_type"] == "accounts.user" and row["target_id"] == str(admin_user.pk)
    assert row["changes"] == {"a": [1, 2]}
    system_row = next(r for r in body["results"] if r["action"] == "organization.created")
    assert system_row["actor"] is None and system_row["actor_repr"] == "system"


def test_needs_audit_view_403_envelope_and_nothing_leaked(org, requester):
    audit_record(action="secret.thing", organization=org, target_repr="secret")
    for path in (LIST, VERIFY, f"{LIST}{org_rows(org).first().pk}/", f"{LIST}export/?format=csv"):
        response = api_client(requester).get(path)
        assert response.status_code == 403, path
        assert error_code(response) == "permission_denied"
        assert "secret" not in response.content.decode()
    assert not AuditLog.objects.filter(action="audit.exported").exists()


def test_unauthenticated_401(db):
    response = api_client().get(LIST)
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_write_methods_are_not_allowed(org, admin_user):
    row = org_rows(org).first()
    client = api_client(admin_user)
    assert client.post(LIST, {}).status_code == 405
    assert client.delete(f"{LIST}{row.pk}/").status_code == 405
    assert client.patch(f"{LIST}{row.pk}/", {"action": "x"}).status_code == 405
    assert AuditLog.objects.get(pk=row.pk).action == row.action


def test_other_org_rows_never_visible_and_detail_404(org, other_org, auditor, other_admin):
    audit_record(action="other.secret", actor=other_admin, organization=other_org)
    theirs = AuditLog.objects.get(action="other.secret")
    client = api_client(auditor)
    listed = client.get(LIST, {"page_size": 100}).json()
    assert listed["count"] == org_rows(org).count()
    assert all(r["action"] != "other.secret" for r in listed["results"])
    assert client.get(LIST, {"action": "other.secret"}).json()["count"] == 0
    detail = client.get(f"{LIST}{theirs.pk}/")
    assert detail.status_code == 404
    assert error_code(detail) == "not_found"
    assert client.get(f"{LIST}999999999/").status_code == 404
    mine = org_rows(org).first()
    assert client.get(f"{LIST}{mine.pk}/").json()["id"] == mine.pk
    # and the other org's auditor sees only theirs
    other_listed = api_client(other_admin).get(LIST, {"page_size": 100}).json()
    assert {r["action"] for r in other_listed["results"]} >= {"other.secret"}
    assert all(r["action"] != "user.created" or r["target_id"] != str(auditor.pk) for r in other_listed["results"])


def test_filters(org, auditor, admin_user, requester):
    audit_record(action="thing.done", actor=admin_user, organization=org, target=requester)
    audit_record(action="thing.done", actor=requester, organization=org, target_type="x.y", target_id="42")
    audit_record(action="thing.other", organization=org, target_type="x.y", target_id="43")
    client = api_client(auditor)

    def count(**params):
        response = client.get(LIST, params)
        assert response.status_code == 200, response.content
        return response.json()["count"]

    assert count(action="thing.done") == 2
    assert count(action_prefix="thing.") == 3
    assert count(action="thing.done", actor=str(admin_user.pk)) == 1
    assert count(actor=str(requester.pk), action_prefix="thing.") == 1
    assert count(actor="system", action_prefix="thing.") == 1
    assert count(target_type="x.y") == 2
    assert count(target_type="x.y", target_id="42") == 1
    assert count(target_type="accounts.user", target_id=str(requester.pk), action="thing.done") == 1
    now = timezone.now()
    assert count(since=(now - dt.timedelta(minutes=5)).isoformat(), action_prefix="thing.") == 3
    assert count(since=(now + dt.timedelta(minutes=5)).isoformat()) == 0
    assert count(until=(now - dt.timedelta(minutes=5)).isoformat()) == 0
    assert count(until=(now + dt.timedelta(minutes=5)).isoformat()) == org_rows(org).count()
    assert count(since=now.date().isoformat(), action_prefix="thing.") == 3


@pytest.mark.parametrize(
    "params", [{"actor": "nobody"}, {"since": "yesterday"}, {"until": "2026-13-45"}, {"ordering": "sequence"}]
)
def test_bad_filters_400_envelope(org, auditor, params):
    response = api_client(auditor).get(LIST, params)
    if "ordering" in params:  # a valid ordering, for contrast
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert set(response.json()["error"]["details"]) == set(params)


def test_pagination(org, auditor):
    bulk_chain(org, 130)
    client = api_client(auditor)
    body = client.get(LIST, {"page_size": 100}).json()
    assert len(body["results"]) == 100 and body["next"]
    second = client.get(LIST, {"page_size": 100, "page": 2}).json()
    assert len(second["results"]) == body["count"] - 100
    assert client.get(LIST, {"page_size": 1000}).json()["results"].__len__() == 100


def test_list_query_count_is_constant(org, auditor, django_assert_num_queries):
    client = api_client(auditor)
    client.get(LIST)  # warm caches (content types, etc.)

    def queries_for_page():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(LIST, {"page_size": 100}).status_code == 200
        return len(ctx.captured_queries)

    few = queries_for_page()
    bulk_chain(org, 90, actor=auditor)
    many = queries_for_page()
    assert few == many == 2, (few, many)  # count, page (the caller: the process's copy, accounts/auth_cache.py)
    with django_assert_num_queries(few):
        client.get(LIST, {"page_size": 100, "action": "bulk.row"})


def test_verify_endpoint_ok_then_broken(org, auditor):
    bulk_chain(org, 20)
    client = api_client(auditor)
    response = client.get(VERIFY)
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "checked": org_rows(org).count(),
        "first_bad": None,
        "reason": None,
        "first_bad_id": None,
    }
    target = org_rows(org)[10]
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET target_repr = 'edited' WHERE id = %s", [target.pk])
    body = client.get(VERIFY).json()
    assert body["ok"] is False
    assert (body["first_bad"], body["reason"], body["first_bad_id"]) == (target.sequence, "hash_mismatch", target.pk)


def test_verify_checks_only_the_callers_chain(org, other_org, auditor, other_admin):
    bulk_chain(other_org, 5)
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET action = 'x' WHERE chain = %s AND sequence = 2", [str(other_org.pk)])
    assert api_client(auditor).get(VERIFY).json()["ok"] is True
    assert api_client(other_admin).get(VERIFY).json()["ok"] is False
