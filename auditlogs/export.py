"""Streaming export of audit rows as CSV or JSON lines: constant memory, one chunk per ``CHUNK_ROWS`` rows."""

import csv
import io
import json
from collections.abc import Iterable, Iterator

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from auditlogs.chain import AuditJSONEncoder

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
CHUNK_ROWS = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _jsonable(row: dict) -> dict:
    out = dict(row)
    out["created_at"] = row["created_at"].isoformat()
    for key in ("organization_id", "actor_id"):
        out[key] = str(row[key]) if row[key] is not None else None
    return out


def _csv_cell(value) -> str:
    """Spreadsheets run cells that start like a formula: prefix those with a quote.

    CSV is for people; JSONL keeps every value exactly (and can be re-verified).
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, cls=AuditJSONEncoder, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _rows(queryset: QuerySet) -> Iterator[dict]:
    return queryset.values(*COLUMNS).iterator(chunk_size=CHUNK_ROWS)


def iter_csv(queryset: QuerySet) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for count, row in enumerate(_rows(queryset), start=1):
        data = _jsonable(row)
        writer.writerow([_csv_cell(data[c]) for c in COLUMNS])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def iter_jsonl(queryset: QuerySet) -> Iterator[bytes]:
    lines = []
    for row in _rows(queryset):
        lines.append(json.dumps(_jsonable(row), cls=AuditJSONEncoder, ensure_ascii=False))
        if len(lines) == CHUNK_ROWS:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def iter_export(queryset: QuerySet, fmt: str) -> Iterator[bytes]:
    return iter_csv(queryset) if fmt == "csv" else iter_jsonl(queryset)


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
