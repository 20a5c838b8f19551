"""The optional read replica (``DATABASE_REPLICA_URL``): long reads that tolerate a little lag go there.

Only code that asks reads from the replica: reports (``approvals.reports``), the audit export and
audit verification run inside ``replica_reads()`` (or query ``read_alias()``). Everything else,
and every write, uses the primary, so a request never reads its own writes from a lagging copy.
Without ``DATABASE_REPLICA_URL`` all of it reads the primary.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

from django.conf import settings

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def has_replica() -> bool:
    return REPLICA in settings.DATABASES


def read_alias() -> str:
    """The alias for a read that may use the replica."""
    return REPLICA if has_replica() else "default"


@contextlib.contextmanager
def replica_reads():
    """Route the ORM reads made inside the block to the replica (when there is one)."""
    token = _replica_reads.set(True)
    try:
        yield read_alias()
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _replica_reads.get() and has_replica():
            return REPLICA
        return None  # the primary

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data on both

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA  # a replica follows the primary's schema by replication
