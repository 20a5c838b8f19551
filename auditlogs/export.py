"""Streaming export of audit rows as CSV or JSON lines: constant memory, one chunk per ``CHUNK_ROWS`` rows."""

import csv
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from auditlogs.verify import epoch_us, from_epoch_us
from core.db_router import read_alias

logger = logging.getLogger(__name__)

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
COLUMNS = [
    "id",
    "chain",
    "sequence",
    "created_at",
    "organization_id",
    "actor_id",
    "actor_repr",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "changes",
    "ip",
    "user_agent",
    "request_id",
    "prev_hash",
    "hash",
]
CHUNK_ROWS = 500  # rows per yielded chunk
FETCH_ROWS = 1000  # rows per server-side cursor fetch
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Plain text and ints straight from the cursor (no per-row Django converters): ids and the
# jsonb as text, the timestamp as epoch microseconds (Django's aware timestamptz loader is slow).
_SELECT = [
    "id",
    "chain",
    "sequence",
    epoch_us("created_at"),
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
    "prev_hash",
    "hash",
]
_JSON = json.JSONEncoder(ensure_ascii=False)  # built once; the same bytes json.dumps(..., ensure_ascii=False) gives


def _defuse(text: str) -> str:
    """Spreadsheets run cells that start like a formula: prefix those with a quote.

    CSV is for people; JSONL keeps every value exactly (and can be re-verified).
    """
    return "'" + text if text.startswith(_FORMULA_START) else text


def _rows(queryset: QuerySet) -> Iterator[tuple]:
    # A long read: the replica when there is one (core/db_router.py).
    return queryset.using(read_alias()).values_list(*_SELECT).iterator(chunk_size=FETCH_ROWS)


def _chunks(queryset: QuerySet, render: Callable[[list[tuple]], str], head: str = "", on_rows=None) -> Iterator[bytes]:
    """``render`` each batch of ``CHUNK_ROWS`` rows to text, one yielded chunk per batch (memory stays flat).

    ``on_rows(n)``, when given, hears of each batch's rows (progress bars).
    """
    if head:
        yield head.encode()
    batch = []
    for row in _rows(queryset):
        batch.append(row)
        if len(batch) == CHUNK_ROWS:
            yield render(batch).encode()
            if on_rows is not None:
                on_rows(len(batch))
            batch = []
    if batch:
        yield render(batch).encode()
        if on_rows is not None:
            on_rows(len(batch))


def _uuid_text(value: str | None) -> str | None:
    """SQLite keeps UUIDs as 32 hex digits; export the dashed form PostgreSQL gives."""
    if value is not None and len(value) == 32:
        return str(uuid.UUID(hex=value))
    return value


def _changes_cell(text: str | None) -> str:
    value = json.loads(text) if text is not None else None
    if value is None:
        return ""
    return _defuse(value if isinstance(value, str) else _JSON.encode(value))


def _csv_cells(row: tuple) -> tuple:
    (row_id, chain, sequence, created, org, actor, actor_repr, action, t_type, t_id, t_repr, changes, ip, ua, req,
     prev, digest) = row  # fmt: skip
    return (
        row_id,
        _defuse(chain),
        sequence,
        from_epoch_us(created).isoformat(),
        _uuid_text(org) or "",
        _uuid_text(actor) or "",
        _defuse(actor_repr),
        _defuse(action),
        _defuse(t_type),
        _defuse(t_id),
        _defuse(t_repr),
        _changes_cell(changes),
        _defuse(ip) if ip else "",
        _defuse(ua),
        _defuse(req),
        _defuse(prev),
        _defuse(digest),
    )


def _jsonl_line(row: tuple) -> str:
    (row_id, chain, sequence, created, org, actor, actor_repr, action, t_type, t_id, t_repr, changes, ip, ua, req,
     prev, digest) = row  # fmt: skip
    return _JSON.encode(
        {
            "id": row_id,
            "chain": chain,
            "sequence": sequence,
            "created_at": from_epoch_us(created).isoformat(),
            "organization_id": _uuid_text(org),
            "actor_id": _uuid_text(actor),
            "actor_repr": actor_repr,
            "action": action,
            "target_type": t_type,
            "target_id": t_id,
            "target_repr": t_repr,
            "changes": json.loads(changes) if changes is not None else None,
            "ip": ip,
            "user_agent": ua,
            "request_id": req,
            "prev_hash": prev,
            "hash": digest,
        }
    )


def iter_csv(queryset: QuerySet, on_rows=None) -> Iterator[bytes]:
    buffer = io.StringIO()  # one per export: exports may run concurrently in threads
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    head = buffer.getvalue()

    def render(batch: list[tuple]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(map(_csv_cells, batch))
        return buffer.getvalue()

    return _chunks(queryset, render, head, on_rows)


def iter_jsonl(queryset: QuerySet, on_rows=None) -> Iterator[bytes]:
    return _chunks(queryset, lambda batch: "\n".join(map(_jsonl_line, batch)) + "\n", on_rows=on_rows)


def iter_export(queryset: QuerySet, fmt: str, on_rows=None) -> Iterator[bytes]:
    return iter_csv(queryset, on_rows) if fmt == "csv" else iter_jsonl(queryset, on_rows)


EXPORT_FAILED = "The export failed part-way; this file is incomplete."


def error_record(fmt: str) -> bytes:
    """The last record of a stream that failed: a CSV row starting ``#error``, or a JSONL ``{"error": ...}`` line."""
    if fmt == "csv":
        return f"#error,export_failed,{EXPORT_FAILED}\r\n".encode()
    return (_JSON.encode({"error": {"code": "export_failed", "message": EXPORT_FAILED}}) + "\n").encode()


def guarded(chunks: Iterable[bytes], fmt: str) -> Iterator[bytes]:
    """A streamed response that fails part-way ends with ``error_record`` instead of raising.

    Its 200 and headers are already sent, so it can no longer become an error response; an
    exception escaping the stream left the ASGI server holding the connection open and the
    client waiting for the rest. The cause goes to the log.
    """
    try:
        yield from chunks
    except Exception:
        logger.exception("audit export failed mid-stream")
        yield error_record(fmt)


async def aiter_sync(iterable: Iterable[bytes]):
    """Serve a sync (database) iterator from an ASGI server chunk by chunk.

    Django would otherwise read a sync iterator into a list before sending it under ASGI.
    Every step runs in the request's sync thread, where the server-side cursor lives.
    """
    iterator = iter(iterable)
    done = object()
    step = sync_to_async(lambda: next(iterator, done), thread_sensitive=True)
    while True:
        chunk = await step()
        if chunk is done:
            return
        yield chunk
