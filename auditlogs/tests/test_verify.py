"""verify_chain's fast path (one COPY, text split by hand, payload written without a dict) agrees with the writer."""

import datetime as dt
import threading
import uuid

import pytest
from django.db import connection, transaction

import auditlogs.verify as verify_module
from auditlogs.chain import PAYLOAD_FIELDS, canonical, canonical_payload, payload_from_values
from auditlogs.models import AuditLog
from auditlogs.services import audit_record
from auditlogs.tests.factories import bulk_chain, raw, triggers_disabled
from auditlogs.verify import iso_utc, verify_chain
from core import context
from core.testing import make_org

AWKWARD_TEXT = [
    "tab\there",
    "new\nline",
    "cr\rlf\r\n",
    "back\\slash",
    "\\N",
    "\\",
    "\\t literal",
    "ctl \x08 \x0b \x0c \x1f \x7f",
    'quote " and \\" mix',
    "Zoë 日本語 🚀",
    "",
]


def payload(**overrides):
    values = {
        "chain": "c",
        "sequence": 7,
        "organization_id": uuid.uuid4(),
        "actor_id": None,
        "actor_repr": "system",
        "action": "x.y",
        "target_type": "t",
        "target_id": "1",
        "target_repr": "r",
        "changes": {},
        "ip": None,
        "user_agent": "",
        "request_id": "",
        "created_at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    }
    values.update(overrides)
    return payload_from_values(values)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"actor_id": uuid.uuid4(), "ip": "203.0.113.9", "sequence": 2**62},
        {"changes": {"z": 1, "a": [1.5, 1e20, -0.0, 2**70, None, True], "m": {"b": {}, "a": []}, "é": "ü"}},
        {"changes": None},
        {"changes": ["not", "a", "dict"]},
        *({"target_repr": text, "user_agent": text, "changes": {text: text}} for text in AWKWARD_TEXT),
    ],
)
def test_canonical_payload_is_canonical_of_the_payload_dict(overrides):
    p = payload(**overrides)
    keys = [{"organization_id": "organization", "actor_id": "actor"}.get(f, f) for f in PAYLOAD_FIELDS]
    assert sorted(keys) == sorted(p)
    assert canonical_payload(*(p[k] for k in keys)) == canonical(p)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 11, 22, 3, 23, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 22, 3, 23, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 22, 3, 23, 1, 120000, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 22, 3, 23, 1, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, 59, 59, 500, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(999, 12, 31, 23, 59, 59, 10, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ],
)
@pytest.mark.parametrize("session_zone", ["UTC", "Asia/Kolkata"])
def test_iso_utc_of_postgresql_text_is_pythons_isoformat(value, session_zone):
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL TimeZone = '{session_zone}'")
        cursor.execute("SELECT (%s::timestamptz AT TIME ZONE 'UTC')::text", [value])
        text = cursor.fetchone()[0]
    assert iso_utc(text) == value.astimezone(dt.UTC).isoformat()


@pytest.mark.parametrize("text", ["infinity", "-infinity", "0044-03-15 12:00:00 BC", "10000-01-01 00:00:00.5"])
def test_iso_utc_leaves_what_the_writer_cannot_produce_unlike_any_real_timestamp(text):
    assert iso_utc(text) == text


@pytest.mark.django_db
def test_copy_escapes_and_nulls_round_trip(org):
    for text in AWKWARD_TEXT:
        token = context.set_current(context.RequestContext(request_id=text[:64], ip=None, user_agent=text))
        try:
            audit_record(action="test.text", organization=org, target_repr=text, changes={text: [text, None]})
        finally:
            context.reset(token)
    result = verify_chain(organization=org)
    assert result["ok"], result
    # and an edit inside an escaped field is still seen
    row = AuditLog.objects.get(chain=str(org.pk), target_repr="\\N")
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET target_repr = %s WHERE id = %s", ["\\n", row.pk])
    result = verify_chain(organization=org)
    assert (result["ok"], result["reason"], result["first_bad"]) == (False, "hash_mismatch", row.sequence)


@pytest.mark.django_db
def test_verify_ignores_the_sessions_datestyle(org):
    audit_record(action="test.a", organization=org, changes={"n": 1})
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL DateStyle = 'SQL, DMY'")
        cursor.execute("SET LOCAL TimeZone = 'America/St_Johns'")
    assert verify_chain(organization=org)["ok"]


@pytest.mark.django_db
def test_break_early_in_a_long_chain_leaves_the_transaction_usable(org):
    bulk_chain(org, 20_000)
    other = make_org("verify-other")
    row = AuditLog.objects.get(chain=str(org.pk), sequence=5)
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET action = 'forged' WHERE id = %s", [row.pk])
    result = verify_chain(organization=org)
    assert (result["reason"], result["first_bad"], result["checked"]) == ("hash_mismatch", 5, 5)
    # the COPY was cancelled and rolled back to its savepoint: the same transaction goes on
    assert AuditLog.objects.filter(chain=str(org.pk)).count() >= 20_000
    assert verify_chain(organization=other)["ok"]


@pytest.mark.django_db(transaction=True)
def test_rows_appended_while_verifying_are_not_flagged(monkeypatch):
    """Rows and head come from one snapshot: a writer committing mid-verify is not "rows removed from the end"."""
    org = make_org("verify-live")
    bulk_chain(org, 3000)
    expected = AuditLog.objects.filter(chain=str(org.pk)).count()
    real = verify_module.canonical_payload
    appended = []

    def write_once_then_hash(*args):
        if not appended:

            def writer():
                try:
                    with transaction.atomic():
                        appended.append(audit_record(action="test.live", organization=org))
                finally:
                    connection.close()

            thread = threading.Thread(target=writer)
            thread.start()
            thread.join(timeout=30)
        return real(*args)

    monkeypatch.setattr(verify_module, "canonical_payload", write_once_then_hash)
    result = verify_chain(organization=org)
    assert appended and appended[0].sequence == expected + 1
    assert result["ok"], result
    assert result["checked"] == expected
    monkeypatch.setattr(verify_module, "canonical_payload", real)
    assert verify_chain(organization=org) == {**result, "checked": expected + 1}


@pytest.mark.django_db
def test_orm_path_for_other_databases_agrees(org, monkeypatch):
    """The path SQLite takes (no COPY), run here on PostgreSQL: same rows, same verdicts."""
    for i, text in enumerate(AWKWARD_TEXT):
        token = context.set_current(context.RequestContext(request_id=str(i), ip="2001:DB8:0::1", user_agent=text))
        try:
            audit_record(action="test.orm", organization=org, target_repr=text, changes={"n": [1.0, 1e20, 0.1, i]})
        finally:
            context.reset(token)
    fast = verify_chain(organization=org)
    monkeypatch.setattr(verify_module, "_has_copy", lambda: False)
    assert verify_chain(organization=org) == fast
    assert fast["ok"], fast
    row = AuditLog.objects.get(chain=str(org.pk), request_id="3")
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET changes = '{\"n\": [1, 1e20, 0.1, 4]}' WHERE id = %s", [row.pk])
    broken = verify_chain(organization=org)
    assert (broken["reason"], broken["first_bad"]) == ("hash_mismatch", row.sequence)
    monkeypatch.undo()
    assert verify_chain(organization=org) == broken
