"""Chain verification: recompute every hash of one chain, streaming, in constant memory."""

import datetime as dt
import hashlib

from django.db import models
from django.db.models import BigIntegerField, F, Func, TextField
from django.db.models.functions import Cast

from auditlogs.chain import GENESIS_HASH, canonical, load_canonical_json, normalize_ip
from auditlogs.models import PLATFORM_CHAIN, AuditChainHead, AuditLog

CHUNK_SIZE = 2000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_us(field: str) -> Func:
    """A timestamptz as integer microseconds since the epoch (exact: EXTRACT gives numeric on PostgreSQL >= 14).

    The hot paths read timestamps this way: Django's time-zone-aware timestamptz loader is
    pure Python and was the largest single cost of verify and export.
    """
    return Func(
        F(field), template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint", output_field=BigIntegerField()
    )


def from_epoch_us(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=value)


# Read as plain text/ints so no per-row Django converter runs; the payload is rebuilt to equal
# chain.payload_from_values() of the same row (the writer's hash input) exactly.
_COLUMNS = [
    "id",
    "sequence",
    Cast("organization_id", TextField()),
    Cast("actor_id", TextField()),
    "actor_repr",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    Cast("changes", TextField()),
    "ip",
    "user_agent",
    "request_id",
    epoch_us("created_at"),
    "prev_hash",
    "hash",
]


def chain_of(organization) -> str:
    if organization is None:
        return PLATFORM_CHAIN
    return str(organization.pk if isinstance(organization, models.Model) else organization)


def verify_chain(*, chain: str | None = None, organization=None, chunk_size: int = CHUNK_SIZE) -> dict:
    """``{"ok", "checked", "first_bad", "reason", "first_bad_id", "chain"}`` for one chain.

    Walks the rows in sequence order and stops at the first break:
    - ``hash_mismatch``: the row's content or hash was edited (or rows were swapped:
      the sequence is part of the hashed payload);
    - ``sequence_gap``: a row is missing (``first_bad`` is the missing sequence);
    - ``prev_hash_mismatch``: the row does not link to the one before it;
    - ``head_mismatch``: the chain head records more rows (or another last hash) than
      the table holds: rows were removed from the end.
    ``first_bad`` is the sequence where the chain breaks (None when ok); ``checked`` the
    rows read. Memory does not grow with the chain: rows stream from a server-side cursor.
    """
    if chain is None:
        chain = chain_of(organization)
    rows = AuditLog.objects.filter(chain=chain).order_by("sequence").values_list(*_COLUMNS)
    sha256 = hashlib.sha256
    expected, prev_hash, checked = 1, GENESIS_HASH, 0

    def result(first_bad=None, reason=None, row_id=None):
        return {
            "ok": first_bad is None,
            "checked": checked,
            "first_bad": first_bad,
            "reason": reason,
            "first_bad_id": row_id,
            "chain": chain,
        }

    for row in rows.iterator(chunk_size=chunk_size):
        (row_id, sequence, org, actor, actor_repr, action, t_type, t_id, t_repr, changes, ip, ua, req, created,
         prev, digest) = row  # fmt: skip
        checked += 1
        if sequence != expected:
            return result(expected, "sequence_gap", row_id)
        if prev != prev_hash:
            return result(sequence, "prev_hash_mismatch", row_id)
        payload = {
            "chain": chain,
            "sequence": sequence,
            "organization": org,
            "actor": actor,
            "actor_repr": actor_repr,
            "action": action,
            "target_type": t_type,
            "target_id": t_id,
            "target_repr": t_repr,
            "changes": load_canonical_json(changes),
            "ip": normalize_ip(ip),
            "user_agent": ua,
            "request_id": req,
            "created_at": from_epoch_us(created).isoformat(),
        }
        if sha256((prev_hash + canonical(payload)).encode()).hexdigest() != digest:
            return result(sequence, "hash_mismatch", row_id)
        prev_hash = digest
        expected += 1

    head = AuditChainHead.objects.filter(chain=chain).values_list("sequence", "hash").first()
    last_sequence = expected - 1
    if head is None:
        if checked:
            return result(1, "head_mismatch")
    elif head[0] > last_sequence:  # rows removed from the end
        return result(last_sequence + 1, "head_mismatch")
    elif head[0] < last_sequence:  # rows appended behind the writer's back
        return result(head[0] + 1, "head_mismatch")
    elif head[1] != prev_hash:
        return result(last_sequence, "head_mismatch")
    return result()


def all_chains() -> list[str]:
    """Every chain that has a head or rows (a head deleted by hand still shows up through its rows)."""
    heads = set(AuditChainHead.objects.values_list("chain", flat=True))
    rows = set(AuditLog.objects.order_by().values_list("chain", flat=True).distinct())
    return sorted(heads | rows)
