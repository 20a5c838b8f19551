"""Test helpers for the audit log: fast chained bulk rows and tampering with the triggers off."""

import json
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from auditlogs.chain import PAYLOAD_FIELDS, compute_hash, payload_from_values
from auditlogs.models import AuditChainHead, AuditLog
from auditlogs.verify import chain_of

_COPY_COLUMNS = [*PAYLOAD_FIELDS, "prev_hash", "hash"]


def bulk_chain(organization, n: int, *, action: str = "bulk.row", actor=None) -> None:
    """Append ``n`` valid chained rows to the organization's chain with one COPY (100k rows in a few seconds)."""
    with transaction.atomic():
        _bulk_chain(organization, n, action=action, actor=actor)


def _bulk_chain(organization, n: int, *, action: str, actor) -> None:
    chain = chain_of(organization)
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(chain=chain)
    sequence, prev_hash = head.sequence, head.hash
    start = timezone.now()
    table = AuditLog._meta.db_table
    sql = f"COPY {table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for i in range(n):
            sequence += 1
            values = {
                "chain": chain,
                "sequence": sequence,
                "organization_id": organization.pk,
                "actor_id": actor.pk if actor else None,
                "actor_repr": actor.email if actor else "system",
                "action": action,
                "target_type": "bench.thing",
                "target_id": str(i),
                "target_repr": f"Thing number {i} with a readable name",
                "changes": {"amount": [i, i + 1], "note": ["before", f"after {i}"]},
                "ip": "203.0.113.7",
                "user_agent": "pytest",
                "request_id": f"req-{i}",
                "created_at": start + timedelta(microseconds=i),
            }
            digest = compute_hash(prev_hash, payload_from_values(values))
            copy.write_row(
                [
                    *(json.dumps(values[c]) if c == "changes" else values[c] for c in PAYLOAD_FIELDS),
                    prev_hash,
                    digest,
                ]
            )
            prev_hash = digest
    AuditChainHead.objects.filter(chain=chain).update(sequence=sequence, hash=prev_hash)


@contextmanager
def triggers_disabled():
    """Tamper like someone with table-owner rights would: the append-only triggers off, then on again."""
    table = AuditLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def raw(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def org_rows(organization):
    return AuditLog.objects.filter(chain=chain_of(organization)).order_by("sequence")
