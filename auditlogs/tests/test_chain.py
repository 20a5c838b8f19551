"""Append-only enforcement, the hash chain's normalization, and tamper detection."""

import datetime as dt
import itertools
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from auditlogs.chain import GENESIS_HASH, compute_hash, row_payload
from auditlogs.models import AppendOnlyError, AuditChainHead, AuditLog
from auditlogs.services import audit_record
from auditlogs.tests.factories import org_rows, raw, triggers_disabled
from auditlogs.verify import verify_chain
from core import context
from organizations import services as org_services
from organizations.models import Department

pytestmark = pytest.mark.django_db


def write(org, n=5, **kwargs):
    return [audit_record(action=f"test.row{i}", organization=org, changes={"i": i}, **kwargs) for i in range(n)]


def with_context(ip=None, user_agent="pytest-agent", request_id="req-1"):
    return context.set_current(context.RequestContext(request_id=request_id, ip=ip, user_agent=user_agent))


# --- append-only --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE auditlogs_auditlog SET action = 'forged'",
        "DELETE FROM auditlogs_auditlog",
        "TRUNCATE auditlogs_auditlog",
    ],
)
def test_raw_sql_update_delete_truncate_refused_by_postgresql(org, sql):
    write(org, 2)
    before = list(org_rows(org).values_list("id", "action", "hash"))
    with connection.cursor() as cursor:
        # Test sessions may TRUNCATE (to empty the database between tests); production sessions may not.
        cursor.execute("SET LOCAL auditlogs.allow_truncate = 'off'")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw(sql)
    assert list(org_rows(org).values_list("id", "action", "hash")) == before


def test_trigger_exists_on_the_table(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'auditlogs_auditlog'::regclass AND NOT tgisinternal"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert names == {"auditlogs_auditlog_no_update_delete", "auditlogs_auditlog_no_truncate"}


def test_model_and_queryset_refuse_changes(org):
    row = write(org, 1)[0]
    row.action = "forged"
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).update(action="forged")
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.bulk_update([row], ["action"])
    assert AuditLog.objects.get(pk=row.pk).action == "test.row0"


# --- same transaction as the change ----------------------------------------------------------


def test_rolled_back_change_leaves_no_audit_row_and_chain_stays_gap_free(org):
    count = org_rows(org).count()
    with pytest.raises(RuntimeError), transaction.atomic():
        org_services.department_create(actor=None, organization=org, name="Ghost")
        raise RuntimeError("the surrounding transaction fails after the audit row")
    assert org_rows(org).count() == count
    assert not Department.objects.filter(name="Ghost").exists()
    org_services.department_create(actor=None, organization=org, name="Real")
    assert verify_chain(organization=org)["ok"]


def test_audit_row_that_cannot_be_written_fails_the_change(org):
    count = org_rows(org).count()
    with pytest.raises(DatabaseError), transaction.atomic():
        dept = Department.objects.create(organization=org, name="Unrecorded")
        audit_record(action="x" * 200, organization=org, target=dept)  # longer than the column: INSERT fails
    assert not Department.objects.filter(name="Unrecorded").exists()
    assert org_rows(org).count() == count


# --- the chain ----------------------------------------------------------------------------------


def test_rows_link_and_sequence_has_no_gaps(org):
    write(org, 5)
    rows = list(org_rows(org))
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
        assert after.created_at >= before.created_at
    head = AuditChainHead.objects.get(chain=str(org.pk))
    assert (head.sequence, head.hash) == (rows[-1].sequence, rows[-1].hash)
    assert verify_chain(organization=org) == {
        "ok": True,
        "checked": len(rows),
        "first_bad": None,
        "reason": None,
        "first_bad_id": None,
        "chain": str(org.pk),
    }


def test_chains_are_per_organization(org, other_org):
    write(org, 3)
    write(other_org, 2)
    assert org_rows(org).filter(organization=other_org).count() == 0
    assert verify_chain(organization=org)["ok"] and verify_chain(organization=other_org)["ok"]
    assert org_rows(other_org).first().prev_hash == GENESIS_HASH


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("192.0.2.10", "192.0.2.10"),
        (" 10.0.0.1 ", "10.0.0.1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:192.0.2.1", None),  # IPv4-mapped: PostgreSQL prints it differently from Python
        ("fe80::1%eth0", "fe80::1"),
        ("::1", "::1"),
        ("not-an-ip", "<none>"),
        (None, "<none>"),
    ],
)
def test_ip_round_trip_hashes_identically(org, given, stored):
    token = with_context(ip=given)
    try:
        log = audit_record(action="test.ip", organization=org)
    finally:
        context.reset(token)
    reloaded = AuditLog.objects.get(pk=log.pk)
    if stored == "<none>":
        assert reloaded.ip is None
    elif stored is not None:
        assert reloaded.ip == stored
    assert compute_hash(reloaded.prev_hash, row_payload(reloaded)) == reloaded.hash == log.hash
    assert verify_chain(organization=org)["ok"]


def test_awkward_changes_hash_identically_after_the_jsonb_round_trip(org, admin_user):
    berlin = dt.timezone(dt.timedelta(hours=2))
    changes = {
        "amount": [Decimal("1234.50"), Decimal("0.000001")],
        "when": [dt.datetime(2026, 3, 29, 1, 59, 59, 123456, tzinfo=berlin), None],
        "day": dt.date(2026, 2, 28),
        "at": dt.time(9, 30),
        "id": uuid.uuid4(),
        "name": ["Zoë Ångström", "日本語 🚀 \u200b ﬁ"],
        "nested": {"list": [1, 2.5, {"deep": [None, True, False, []]}], "empty": {}},
        "numbers": [1e20, 1.0, -0.0, 1.5e-7, 0.1 + 0.2, 1e300, 5e-324, 2**70, -17],
        "not_storable": [float("nan"), float("inf"), "nul\x00byte", "lone \ud800 surrogate"],
        "odd_types": [{3, 1, 2}, b"\x01\xff", ("a", "b")],
        "user": admin_user,
        "\x00key": "value",
        'quote"s and \\backslashes': "<script>alert(1)</script>",
    }
    token = with_context(ip="2001:db8:0:0:1:0:0:1", user_agent="Mozilla/5.0 (Ünïcode) \x00")
    try:
        log = audit_record(
            action="test.json", actor=admin_user, organization=org, target_repr="Ünïcode 🚀", changes=changes
        )
    finally:
        context.reset(token)
    reloaded = AuditLog.objects.get(pk=log.pk)
    assert compute_hash(reloaded.prev_hash, row_payload(reloaded)) == log.hash
    assert verify_chain(organization=org)["ok"]
    assert reloaded.changes["amount"] == ["1234.50", "0.000001"]
    assert reloaded.changes["not_storable"][:2] == ["nan", "inf"]
    assert reloaded.changes["user"] == str(admin_user.pk)
    assert reloaded.ip == "2001:db8::1:0:0:1"


def test_hash_is_independent_of_the_active_time_zone(org, settings):
    settings.TIME_ZONE = "America/New_York"
    with timezone.override("Asia/Kolkata"):
        write(org, 2)
    with timezone.override("Pacific/Chatham"):
        assert verify_chain(organization=org)["ok"]


# --- tampering (the triggers are switched off inside the test, as an attacker with DDL rights would) ---


def test_edited_row_is_detected(org):
    write(org, 6)
    target = org_rows(org)[2]
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET changes = '{\"i\": 999}' WHERE id = %s", [target.pk])
    result = verify_chain(organization=org)
    assert result["ok"] is False
    assert (result["first_bad"], result["reason"], result["first_bad_id"]) == (
        target.sequence,
        "hash_mismatch",
        target.pk,
    )


def test_edited_row_with_recomputed_hash_breaks_the_next_link(org):
    write(org, 6)
    target = org_rows(org)[2]
    target.action = "forged"
    forged_hash = compute_hash(target.prev_hash, row_payload(target))
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET action = 'forged', hash = %s WHERE id = %s", [forged_hash, target.pk])
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"], result["reason"]) == (False, target.sequence + 1, "prev_hash_mismatch")


def test_deleted_row_is_detected(org):
    write(org, 6)
    target = org_rows(org)[3]
    with triggers_disabled():
        raw("DELETE FROM auditlogs_auditlog WHERE id = %s", [target.pk])
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"], result["reason"]) == (False, target.sequence, "sequence_gap")


def test_deleted_row_with_later_rows_renumbered_is_detected(org):
    write(org, 6)
    target = org_rows(org)[3]
    with triggers_disabled():
        raw("DELETE FROM auditlogs_auditlog WHERE id = %s", [target.pk])
        # in two steps: (chain, sequence) is unique row by row, and one UPDATE of them all could
        # meet its rows in any order (row 6 moved to 5 before 5 moved to 4)
        raw(
            "UPDATE auditlogs_auditlog SET sequence = sequence + 1000000 WHERE chain = %s AND sequence > %s",
            [str(org.pk), target.sequence],
        )
        raw(
            "UPDATE auditlogs_auditlog SET sequence = sequence - 1000001 WHERE chain = %s AND sequence > 1000000",
            [str(org.pk)],
        )
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"]) == (False, target.sequence)
    assert result["reason"] in {"prev_hash_mismatch", "hash_mismatch"}


def test_swapped_rows_are_detected(org):
    write(org, 6)
    a, b = org_rows(org)[2], org_rows(org)[3]
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET sequence = 0 WHERE id = %s", [a.pk])
        raw("UPDATE auditlogs_auditlog SET sequence = %s WHERE id = %s", [a.sequence, b.pk])
        raw("UPDATE auditlogs_auditlog SET sequence = %s WHERE id = %s", [b.sequence, a.pk])
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"], result["first_bad_id"]) == (False, a.sequence, b.pk)


def test_swapped_contents_are_detected(org):
    write(org, 6)
    a, b = org_rows(org)[1], org_rows(org)[4]
    with triggers_disabled():
        raw(
            "UPDATE auditlogs_auditlog x SET action = y.action, changes = y.changes FROM auditlogs_auditlog y "
            "WHERE (x.id, y.id) IN ((%s, %s), (%s, %s))",
            [a.pk, b.pk, b.pk, a.pk],
        )
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"], result["reason"]) == (False, a.sequence, "hash_mismatch")


def test_deleted_last_rows_are_detected_through_the_head(org):
    write(org, 6)
    last = org_rows(org).last()
    with triggers_disabled():
        raw("DELETE FROM auditlogs_auditlog WHERE chain = %s AND sequence >= %s", [str(org.pk), last.sequence - 1])
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"], result["reason"]) == (False, last.sequence - 1, "head_mismatch")


def test_every_row_deleted_is_detected_through_the_head(org):
    write(org, 2)
    with triggers_disabled():
        raw("DELETE FROM auditlogs_auditlog WHERE chain = %s", [str(org.pk)])
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"], result["checked"]) == (False, 1, 0)


def test_row_appended_behind_the_writers_back_is_detected(org):
    write(org, 3)
    last = org_rows(org).last()
    forged = AuditLog(
        chain=last.chain,
        sequence=last.sequence + 1,
        organization_id=org.pk,
        actor_repr="system",
        action="forged.append",
        created_at=last.created_at,
        prev_hash=last.hash,
        changes={},
    )
    forged.hash = compute_hash(last.hash, row_payload(forged))
    forged.save(force_insert=True)  # INSERT is allowed; the head was not moved
    result = verify_chain(organization=org)
    assert (result["ok"], result["first_bad"], result["reason"]) == (False, forged.sequence, "head_mismatch")


def test_tampering_with_one_org_does_not_flag_another(org, other_org):
    write(org, 3)
    write(other_org, 3)
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET action = 'forged' WHERE chain = %s AND sequence = 2", [str(org.pk)])
    assert not verify_chain(organization=org)["ok"]
    assert verify_chain(organization=other_org)["ok"]
