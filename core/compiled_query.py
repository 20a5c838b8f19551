"""ORM queries compiled once per process and run again with new values (PostgreSQL).

Profiles of the decision path (issue 14) showed the ORM spending more Python time turning a
hot query into SQL (``SQLCompiler.as_sql``: about 1.2 ms for the decision's lock-and-load with
its joins, a few tenths of a millisecond for each smaller read) than PostgreSQL spends running
it. A ``CompiledQuery`` keeps the queryset as the one definition of the query (its filters,
``select_related``, ``select_for_update``), compiles it the first time with marker values, and
afterwards sends the same SQL with the caller's values in the markers' places and builds the
instances exactly as ``QuerySet.__iter__`` does (converters, related populators), or for a
``values()`` queryset its dicts; ``fetch_page`` adds ``LIMIT``/``OFFSET`` to the compiled SQL
(the inbox list, ``GET tasks/``).

It is used only where the values reach the SQL unchanged (UUIDs, strings, datetimes, booleans
and lists of them on PostgreSQL): the compile checks that each marker appears as itself among
the parameters, and a query for which that does not hold, or any database other than PostgreSQL
(the embedded SQLite default), simply runs the queryset each time.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ValuesIterable, get_related_populators

_UNSUPPORTED = object()


class _Compiled:
    __slots__ = (
        "annotations",
        "compiler",
        "converters",
        "init_list",
        "model",
        "populators",
        "positions",
        "span",
        "sql",
        "template",
    )

    def __init__(self, queryset: QuerySet, markers: dict[str, Any], using: str) -> None:
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        self.sql, self.template = sql, list(params)
        # where each named value goes: the markers are unique objects, found by identity/equality
        self.positions: dict[str, list[int] | list[tuple[int, int]]] = {}
        for name, marker in markers.items():
            if isinstance(marker, list):
                found = [(i, marker.index(p)) for i, p in enumerate(params) if any(p == m for m in marker)]
                if len(found) != len(marker):
                    raise LookupError(name)
            else:
                found = [i for i, p in enumerate(params) if p == marker]
                if not found:
                    raise LookupError(name)
            self.positions[name] = found
        self.compiler = compiler
        select, klass_info = compiler.select, compiler.klass_info
        self.converters = compiler.get_converters([s[0] for s in select[0 : compiler.col_count]])
        if queryset._iterable_class is ValuesIterable:  # values(): dicts keyed as ValuesIterable keys them
            query = queryset.query
            names = query.selected or [*query.extra_select, *query.values_select, *query.annotation_select]
            self.model, self.init_list = None, list(names)
            return
        self.model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.span = (start, end)
        self.init_list = [f[0].target.attname for f in select[start:end]]
        self.populators = get_related_populators(klass_info, select, using)
        self.annotations = tuple(compiler.annotation_col_map.items())

    def params(self, values: dict[str, Any]) -> list:
        params = list(self.template)
        for name, spots in self.positions.items():
            value = values[name]
            if spots and isinstance(spots[0], tuple):
                for position, index in spots:
                    params[position] = value[index]
            else:
                for position in spots:
                    params[position] = value
        return params

    def rows(self, rows: list, using: str) -> list[Model] | list[dict]:
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        if self.model is None:
            names = self.init_list
            return [dict(zip(names, row, strict=True)) for row in rows]
        start, end = self.span
        out = []
        for row in rows:
            obj = self.model.from_db(using, self.init_list, row[start:end])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations:
                setattr(obj, name, row[position])
            out.append(obj)
        return out


def _marker_like(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_marker_like(v) for v in value]
    if isinstance(value, uuid.UUID):
        return uuid.uuid4()
    if isinstance(value, str):
        # with the characters a lookup would escape or fold: if the ORM changes a value on its
        # way to the SQL, the marker is not found as itself and the query is not compiled
        return f"Mk_%\\{uuid.uuid4().hex}"
    if isinstance(value, datetime):
        return datetime(1, 1, 1, tzinfo=UTC) + timedelta(microseconds=secrets.randbelow(10**12))
    return _UNSUPPORTED


def _shape(values: dict[str, Any]) -> tuple:
    return tuple((name, len(v) if isinstance(v, (list, tuple)) else -1) for name, v in sorted(values.items()))


class CompiledQuery:
    """``CompiledQuery(build)``: ``build(**values)`` returns the queryset; ``fetch(**values)`` its rows.

    Values are UUIDs, strings, aware datetimes or lists of them (a list's length is part of the
    compiled shape: one compile per length met).
    """

    def __init__(self, build: Callable[..., QuerySet], *, using: str = "default") -> None:
        self.build = build
        self.using = using
        self._shapes: dict[tuple, _Compiled | None] = {}
        self._lock = threading.Lock()

    def fetch(self, **values: Any) -> list[Model]:
        return self._fetch(None, values)

    def fetch_page(self, offset: int, limit: int, /, **values: Any) -> list[Model] | list[dict]:
        """``build(**values)[offset : offset + limit]``: the compiled SQL with ``LIMIT``/``OFFSET``
        added (the build must not slice). A ``values()`` queryset gives its dicts."""
        return self._fetch((offset, limit), values)

    def fetch_rows(self, **values: Any) -> list[tuple] | None:
        """The rows as the database returns them, for a caller that keeps them and builds the
        instances later (``from_rows``, with values of the same shape); None where the query is
        not compiled (another database, a value the ORM transforms)."""
        compiled = self._compiled_for(values)
        return None if compiled is None else self._execute(compiled, None, values)

    def from_rows(self, rows: list[tuple], **values: Any) -> list[Model] | list[dict]:
        """New instances from ``fetch_rows``'s rows (each call its own: the rows may be shared)."""
        return self._compiled_for(values).rows(rows, self.using)

    def _compiled_for(self, values: dict[str, Any]) -> _Compiled | None:
        if connections[self.using].vendor != "postgresql":
            return None
        shape = _shape(values)
        compiled = self._shapes.get(shape, _UNSUPPORTED)
        return self._compile(shape, values) if compiled is _UNSUPPORTED else compiled

    def _execute(self, compiled: _Compiled, page: tuple[int, int] | None, values: dict[str, Any]) -> list[tuple]:
        sql, params = compiled.sql, compiled.params(values)
        if page is not None:
            sql, params = f"{sql} LIMIT %s OFFSET %s", [*params, page[1], page[0]]
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _fetch(self, page: tuple[int, int] | None, values: dict[str, Any]) -> list:
        compiled = self._compiled_for(values)
        if compiled is None:
            return self._run(page, values)
        return compiled.rows(self._execute(compiled, page, values), self.using)

    def _run(self, page: tuple[int, int] | None, values: dict[str, Any]) -> list:
        queryset = self.build(**values)
        if page is not None:
            offset, limit = page
            queryset = queryset[offset : offset + limit]
        return list(queryset)

    def _compile(self, shape: tuple, values: dict[str, Any]) -> _Compiled | None:
        markers = {name: _marker_like(v) for name, v in values.items()}
        compiled = None
        if not any(m is _UNSUPPORTED or (isinstance(m, list) and _UNSUPPORTED in m) for m in markers.values()):
            try:
                compiled = _Compiled(self.build(**markers), markers, self.using)
            except LookupError:
                compiled = None  # a value the ORM transforms on its way to the SQL: run the queryset each time
        with self._lock:
            self._shapes[shape] = compiled
        return compiled
