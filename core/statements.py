"""Reads whose SQL is compiled once per process and sent again with each call's values.

Building and compiling a queryset costs the same on every request, and for a short read it is
most of the Python time (issue 14: the inbox list's statement compiled in about as long as the
database took to answer it). ``statement(key, build)`` compiles ``build()`` once per ``key``;
the queryset is built with stand-in values (``placeholder(n)``, distinct per argument) and
``Statement.rows`` swaps each stand-in for the call's value in the compiled parameters. A
value the build reads from anywhere else (the clock, settings) would be frozen into the SQL:
builds take every varying value as an argument, and the key names every choice that changes
the SQL's shape. PostgreSQL only: other backends convert the stand-ins differently (callers
keep the plain queryset for them).
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import connections

_STATEMENTS: dict = {}


def placeholder(n: int) -> uuid.UUID:
    """A stand-in for the n-th value of a build (a UUID no row has)."""
    return uuid.UUID(int=n + 1)


def instant_placeholder(n: int) -> dt.datetime:
    """A stand-in for the n-th moment of a build (the clock's reading: in year 1)."""
    return dt.datetime(1, 1, 1, microsecond=n + 1, tzinfo=dt.UTC)


_STAND_INS = (uuid.UUID, dt.datetime)


class Statement:
    def __init__(self, queryset):
        compiler = queryset.query.get_compiler(using=queryset.db)
        self.sql, params = compiler.as_sql()
        self.params = tuple(params)
        self.using = queryset.db
        query = queryset.query
        # As ValuesIterable names a values() row's columns.
        selected = query.selected
        self.names = (
            list(selected) if selected else [*query.extra_select, *query.values_select, *query.annotation_select]
        )
        self.converters = compiler.get_converters([col for col, *_ in compiler.select])
        self.compiler = compiler

    def rows(self, values: dict, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """The rows as ``values()`` gives them, stand-ins replaced by ``values[stand-in]``."""
        params = [values.get(p, p) if isinstance(p, _STAND_INS) else p for p in self.params]
        sql = self.sql
        if limit is not None:
            sql += " LIMIT %s OFFSET %s"
            params += [limit, offset]
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        names = self.names
        return [dict(zip(names, row, strict=True)) for row in rows]


def statement(key, build) -> Statement:
    """``build()``'s compiled statement, made on the first call with this ``key`` in the process."""
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = Statement(build())
    return found
