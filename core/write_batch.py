"""Several independent writes sent as one statement: a round trip, and the ORM's SQL compiler, each less.

On PostgreSQL the writes become data-modifying CTEs of one statement,
``WITH w0 AS (INSERT ...), w1 AS (UPDATE ...) INSERT ...``: they run on one snapshot and foreign
keys are checked at the end of the statement, so an insert may point at a row inserted beside it
(our ids are UUIDs made in Python). What they cannot do is see each other's effects, so a batch
holds only writes that do not depend on each other, and never two writes of one row (PostgreSQL
leaves that undefined). Profiles on the decision path (issue 14) showed a third of a decision's
Python time in compiling and sending single-row writes. Other databases (the embedded SQLite
default) get one ORM call per write, as before.

Like ``bulk_create`` and ``save(update_fields=...)``: ``auto_now``/``auto_now_add`` fields are
set, no model signals are sent (none are used for these models).
"""

from __future__ import annotations

from django.db import connections, models

try:
    from psycopg import _queries as _psycopg_queries
except ImportError:  # pragma: no cover - psycopg is the PostgreSQL driver; SQLite needs none
    _psycopg_queries = None

# psycopg turns a statement's ``%s`` into ``$n`` with a regex pass over its SQL, cached per SQL text
# only for statements of at most 50 parameters. A batch statement has more (a decision's flush:
# its writes, notification and e-mail rows, the chain lock, ~110), with the same text every time,
# and paid that pass on every decision (0.15 ms of Python, issue 14). Its 4 KB length cap still
# keeps long one-off bulk statements out of psycopg's cache (128 entries).
if _psycopg_queries is not None and getattr(_psycopg_queries, "MAX_CACHED_STATEMENT_PARAMS", 0) < 1000:
    _psycopg_queries.MAX_CACHED_STATEMENT_PARAMS = 1000


def _columns(connection, fields) -> str:
    return ", ".join(connection.ops.quote_name(f.column) for f in fields)


class WriteBatch:
    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._parts: list[tuple[str, list]] = []
        self._orm: list = []  # what the batch does on a database without data-modifying CTEs
        self._rows: set = set()  # (table, pk) written by the pending writes

    def _touch(self, objs) -> None:
        # A second write of a row in one statement is undefined in PostgreSQL: send the first one.
        keys = {(obj._meta.db_table, obj.pk) for obj in objs}
        if keys & self._rows:
            self.execute()
        self._rows |= keys

    def __len__(self) -> int:
        return len(self._orm)

    @property
    def _connection(self):
        return connections[self.using]

    def insert(self, objs: list[models.Model]) -> None:
        """Insert ``objs`` (one model), as ``bulk_create`` would."""
        if not objs:
            return
        model = type(objs[0])
        self._touch(objs)
        self._orm.append(lambda: model.objects.using(self.using).bulk_create(objs))
        if self._connection.vendor != "postgresql":
            return
        connection = self._connection
        fields = model._meta.concrete_fields
        params = []
        for obj in objs:
            for f in fields:
                value = f.pre_save(obj, add=True)
                params.append(f.get_db_prep_save(value, connection))
            obj._state.adding, obj._state.db = False, self.using
        row = f"({', '.join(['%s'] * len(fields))})"
        sql = f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({_columns(connection, fields)}) "
        self._parts.append((sql + "VALUES " + ", ".join([row] * len(objs)), params))

    def update(self, obj: models.Model, fields: list[str]) -> None:
        """Update ``fields`` of ``obj`` by primary key, as ``obj.save(update_fields=fields)`` would."""
        self._touch([obj])
        self._orm.append(lambda: obj.save(using=self.using, update_fields=fields))
        if self._connection.vendor != "postgresql":
            return
        connection = self._connection
        meta = obj._meta
        concrete = [meta.get_field(name) for name in fields]
        params = [f.get_db_prep_save(f.pre_save(obj, add=False), connection) for f in concrete]
        sets = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in concrete)
        pk = meta.pk
        sql = (
            f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {sets} "  # noqa: S608 (names are ours)
            f"WHERE {connection.ops.quote_name(pk.column)} = %s"
        )
        self._parts.append((sql, [*params, pk.get_db_prep_value(obj.pk, connection)]))

    def extend(self, other: WriteBatch) -> None:
        """Take ``other``'s pending writes (after this batch's); ``other`` is left empty."""
        if other._rows & self._rows:
            self.execute()
        self._parts += other._parts
        self._orm += other._orm
        self._rows |= other._rows
        other._parts, other._orm, other._rows = [], [], set()

    def execute_returning(self, sql: str, params: list) -> tuple | None:
        """Send the pending writes and then ``sql`` (PostgreSQL: one statement, ``sql`` its main
        part, the writes its CTEs); ``sql``'s first row. ``sql`` must not depend on the writes."""
        if self._connection.vendor != "postgresql":
            self.execute()
            with self._connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        parts = self._parts
        self._parts, self._orm, self._rows = [], [], set()
        ctes = ", ".join(f"w{i} AS ({part})" for i, (part, _) in enumerate(parts))
        with self._connection.cursor() as cursor:
            cursor.execute(f"WITH {ctes} {sql}" if parts else sql, [p for _, ps in parts for p in ps] + list(params))
            return cursor.fetchone()

    def execute(self) -> None:
        """Send the writes (one statement on PostgreSQL) and empty the batch."""
        parts, orm = self._parts, self._orm
        self._parts, self._orm, self._rows = [], [], set()
        if not orm:
            return
        if self._connection.vendor != "postgresql":
            for write in orm:
                write()
            return
        *head, (last_sql, last_params) = parts
        ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(head))
        sql = f"WITH {ctes} {last_sql}" if head else last_sql
        params = [p for _, ps in head for p in ps] + last_params
        with self._connection.cursor() as cursor:
            cursor.execute(sql, params)
