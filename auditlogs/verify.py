"""Chain verification: recompute every hash of one chain, streaming, in constant memory."""

import datetime as dt
import hashlib
import re

from django.db import DataError, connections, models, router, transaction
from django.db.models import BigIntegerField, F, Func

from auditlogs.chain import (
    GENESIS_HASH,
    PAYLOAD_FIELDS,
    canonical_payload,
    load_canonical_json,
    normalize_ip,
    payload_from_values,
)
from auditlogs.models import PLATFORM_CHAIN, AuditChainHead, AuditLog
from core import metrics
from core.db_router import replica_reads

CHUNK_SIZE = 2000
PROGRESS_EVERY = 4096  # rows between two on_rows calls: nothing measurable in the hot loop
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class EpochMicroseconds(Func):
    """A timestamp as integer microseconds since the epoch, computed by the database.

    The hot paths read timestamps this way: Django's time-zone-aware timestamptz loader is
    pure Python and was the largest single cost of verify and export. PostgreSQL: EXTRACT gives
    numeric (exact) on PostgreSQL >= 14. SQLite stores Django's ``YYYY-MM-DD HH:MM:SS[.ffffff]``
    text in UTC: whole seconds from strftime, the six fraction digits read as an integer (a
    float julianday would round them).
    """

    output_field = BigIntegerField()
    template = "(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint"

    def as_sqlite(self, compiler, connection, **extra_context):
        template = (
            "(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) * 1000000"
            " + CAST(substr(%(expressions)s || '.000000', 21, 6) AS INTEGER))"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)


def epoch_us(field: str) -> Func:
    return EpochMicroseconds(F(field))


def from_epoch_us(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=value)


# COPY's text format escapes these (and writes NULL as \N); the same table psycopg's own parser uses.
_COPY_ESCAPE = re.compile(r"\\[btnvfr\\]")
_COPY_UNESCAPED = {"\\b": "\b", "\\t": "\t", "\\n": "\n", "\\v": "\v", "\\f": "\f", "\\r": "\r", "\\\\": "\\"}
_COPY_FIELDS = 16


def _copy_field(text: str) -> str | None:
    if text == "\\N":
        return None
    return _COPY_ESCAPE.sub(lambda m: _COPY_UNESCAPED[m.group()], text)


def iso_utc(text: str) -> str:
    """PostgreSQL's ISO text of a UTC ``timestamp`` -> ``datetime.isoformat()`` of that instant (the hashed form).

    PostgreSQL writes ``2026-01-02 03:04:05.12`` (fraction trimmed, none when zero); Python
    ``2026-01-02T03:04:05.120000+00:00``. Text outside that shape (years past 9999, BC,
    infinity: nothing the writer can produce) comes back unchanged, so it can never hash like
    a real row. Four times cheaper than building a datetime per row.
    """
    n = len(text)
    if n == 19:
        return f"{text[:10]}T{text[11:]}+00:00"
    if 21 <= n <= 26 and text[19] == ".":
        return f"{text[:10]}T{text[11:]:0<15}+00:00"
    return text


def chain_of(organization) -> str:
    if organization is None:
        return PLATFORM_CHAIN
    return str(organization.pk if isinstance(organization, models.Model) else organization)


def _rows_postgresql(connection, chain: str):
    """The chain's rows from one ``COPY ... TO STDOUT``: the server keeps producing rows while Python hashes.

    A server-side cursor stops the server at every FETCH; COPY streams (TCP flow control bounds
    memory), so on two cores the server's share of the work overlaps the client's. libpq hands
    COPY data out one row at a time; it is split here (one decode and one split per row, escapes
    undone only where a field has a backslash) instead of through ``Copy.rows()``, whose per-field
    loaders cost as much as the rest of the row's check. Closing the generator early (a break was
    found) cancels the COPY; the cancel aborts what ran since the savepoint, so that is rolled
    back and the caller's transaction stays usable.
    """
    qn = connection.ops.quote_name
    columns = [
        *(qn(name) for name in ("id", "sequence", "organization_id", "actor_id", "actor_repr", "action")),
        *(qn(name) for name in ("target_type", "target_id", "target_repr", "changes", "ip", "user_agent")),
        qn("request_id"),
        f"({qn('created_at')} AT TIME ZONE 'UTC')::text",
        qn("prev_hash"),
        qn("hash"),
    ]
    table, where, order = qn(AuditLog._meta.db_table), qn("chain"), qn("sequence")
    sql = f"COPY (SELECT {', '.join(columns)} FROM {table} WHERE {where} = %s ORDER BY {order}) TO STDOUT"  # noqa: S608
    sid = transaction.savepoint(using=connection.alias)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW DateStyle")
            if not cursor.fetchone()[0].upper().startswith("ISO"):  # iso_utc() reads the ISO style
                cursor.execute("SET LOCAL DateStyle = 'ISO'")
        with connection.cursor() as cursor, cursor.cursor.copy(sql, [chain]) as copy:
            for data in copy:
                line = str(data, "utf-8")
                fields = line[:-1].split("\t")
                if len(fields) != _COPY_FIELDS or line[-1] != "\n":
                    raise DataError(f"unexpected COPY row from {table}: {line[:200]!r}")
                if "\\" in line:
                    fields = [_copy_field(f) if "\\" in f else f for f in fields]
                fields[0], fields[1] = int(fields[0]), int(fields[1])
                fields[9] = load_canonical_json(fields[9])
                fields[10] = normalize_ip(fields[10])
                fields[13] = iso_utc(fields[13])
                yield fields
    except BaseException:
        transaction.savepoint_rollback(sid, using=connection.alias)
        raise
    transaction.savepoint_commit(sid, using=connection.alias)


def _rows_orm(chain: str, chunk_size: int):
    """Any other database (the embedded SQLite default): the ORM, and the writer's own ``payload_from_values``."""
    rows = AuditLog.objects.filter(chain=chain).order_by("sequence").values("id", *PAYLOAD_FIELDS, "prev_hash", "hash")
    for row in rows.iterator(chunk_size=chunk_size):
        p = payload_from_values(row)
        yield (
            row["id"], p["sequence"], p["organization"], p["actor"], p["actor_repr"], p["action"], p["target_type"],
            p["target_id"], p["target_repr"], p["changes"], p["ip"], p["user_agent"], p["request_id"],
            p["created_at"], row["prev_hash"], row["hash"],
        )  # fmt: skip


def verify_chain(*, chain: str | None = None, organization=None, chunk_size: int = CHUNK_SIZE, on_rows=None) -> dict:
    """``{"ok", "checked", "first_bad", "reason", "first_bad_id", "chain"}`` for one chain.

    Walks the rows in sequence order and stops at the first break:
    - ``hash_mismatch``: the row's content or hash was edited (or rows were swapped:
      the sequence is part of the hashed payload);
    - ``sequence_gap``: a row is missing (``first_bad`` is the missing sequence);
    - ``prev_hash_mismatch``: the row does not link to the one before it;
    - ``head_mismatch``: the chain head records more rows (or another last hash) than
      the table holds: rows were removed from the end.
    ``first_bad`` is the sequence where the chain breaks (None when ok); ``checked`` the
    rows read. Memory does not grow with the chain: rows stream (PostgreSQL: one COPY;
    elsewhere the ORM in ``chunk_size`` chunks). Rows and head are read in one
    snapshot, so rows appended while it runs are neither read nor flagged. ``on_rows(n)``, when
    given, is told of every ``PROGRESS_EVERY`` rows read (and the rest at the end): progress bars.
    """
    if chain is None:
        chain = chain_of(organization)
    with replica_reads():  # a long read: the replica when there is one (core/db_router.py)
        result = _verify_chain(chain, chunk_size, on_rows)
    metrics.AUDIT_VERIFY.labels(result="ok" if result["ok"] else "broken").inc()
    return result


def _verify_chain(chain: str, chunk_size: int, on_rows=None) -> dict:
    connection = connections[router.db_for_read(AuditLog)]
    postgresql = connection.vendor == "postgresql"
    own_transaction = connection.get_autocommit() and not connection.in_atomic_block
    with transaction.atomic(using=connection.alias):
        if postgresql and own_transaction:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        rows = _rows_postgresql(connection, chain) if postgresql and _has_copy() else _rows_orm(chain, chunk_size)
        return _verify(rows, chain, on_rows)


def _has_copy() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3  # psycopg 2 has no Cursor.copy()

    return is_psycopg3


def _verify(rows, chain: str, on_rows=None) -> dict:
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

    try:
        for row in rows:
            (row_id, sequence, org, actor, actor_repr, action, t_type, t_id, t_repr, changes, ip, ua, req, created,
             prev, digest) = row  # fmt: skip
            checked += 1
            if sequence != expected:
                return result(expected, "sequence_gap", row_id)
            if prev != prev_hash:
                return result(sequence, "prev_hash_mismatch", row_id)
            text = canonical_payload(
                chain, sequence, org, actor, actor_repr, action, t_type, t_id, t_repr, changes, ip, ua, req, created
            )
            if sha256((prev_hash + text).encode()).hexdigest() != digest:
                return result(sequence, "hash_mismatch", row_id)
            prev_hash = digest
            expected += 1
            if on_rows is not None and not checked % PROGRESS_EVERY:
                on_rows(PROGRESS_EVERY)
    finally:
        rows.close()
        if on_rows is not None:
            on_rows(checked % PROGRESS_EVERY)

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
