"""Chain verification: recompute every hash of one chain, streaming, in constant memory."""

from django.db import models

from auditlogs.chain import GENESIS_HASH, PAYLOAD_FIELDS, compute_hash, payload_from_values
from auditlogs.models import PLATFORM_CHAIN, AuditChainHead, AuditLog

CHUNK_SIZE = 2000
_COLUMNS = ["id", *PAYLOAD_FIELDS, "prev_hash", "hash"]


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

    for values in rows.iterator(chunk_size=chunk_size):
        row = dict(zip(_COLUMNS, values, strict=True))
        checked += 1
        if row["sequence"] != expected:
            return result(expected, "sequence_gap", row["id"])
        if row["prev_hash"] != prev_hash:
            return result(row["sequence"], "prev_hash_mismatch", row["id"])
        if compute_hash(prev_hash, payload_from_values(row)) != row["hash"]:
            return result(row["sequence"], "hash_mismatch", row["id"])
        prev_hash = row["hash"]
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
