"""A per-process copy of each authenticated user, and the channel that revokes the copies at once.

Every API request loads its user with the organization, department and roles (one query,
accounts/authentication.py). Each process keeps the row it read, per user, for at most
``AUTH_USER_CACHE_SECONDS`` (and never longer than an access token lives), tagged with two
**stamps** read from Redis before the query: the user's (``authstamp:user:<id>``) and everyone's
(``authstamp:all``). A copy is used only while both stamps still hold the values it was tagged
with, and the stamps are read in the request's one Redis round trip, with the throttle's hit
(core/throttling.py): a warm request costs that round trip and no SQL.

The revocation channel: every service that changes what authentication or the permission
checks read replaces a stamp with a new random value (``user_changed`` for the user's row or
role memberships: deactivation, token revocation by logout or password change, role grants;
``everyone_changed`` for rows many users share: a role's permissions, a department, the
organization), so the next request in every process goes back to the database. It does so
twice: at once, inside the change's transaction (a process that then reads the old row tags
it with the new stamp), and again after the commit (which that copy does not survive). The
stamp is read before the query, so a copy is never tagged with a stamp newer than its row.

While Redis is down (the breaker of core/cache.py open, or no Redis at all) there are no
stamps: authentication reads the database on every request and the process drops its copies,
so none outlives an outage in which a change could not be announced. Stamps are random, not
counters: Redis losing its data makes them unknown (a miss), never equal to an old value. The
one bound: a change whose stamp could not be written (Redis down for the writer but not for a
reader) shows after at most ``AUTH_USER_CACHE_SECONDS``.
"""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework_simplejwt.settings import api_settings

from core import events

USER_STAMP = "authstamp:user:{}"
ALL_STAMP = "authstamp:all"
STAMP_SECONDS = 24 * 3600  # a stamp that expires is set again on the next miss
MAX_ENTRIES = 10_000

# user id (str) -> (monotonic deadline, stamps, raw row); dict operations are atomic for the threads
_entries: dict[str, tuple[float, tuple, tuple]] = {}


def lifetime() -> float:
    return min(settings.AUTH_USER_CACHE_SECONDS, api_settings.ACCESS_TOKEN_LIFETIME.total_seconds())


def cached_row(user_id: str, hits: list[tuple[str, int]], fetch) -> tuple[tuple | None, list[int] | None]:
    """The user's row, from this process's copy or ``fetch()``, and the counts of ``hits`` (the
    throttle's), in one Redis round trip. The counts are None when Redis could not count them."""
    seconds = lifetime()
    read = getattr(cache, "count_hits_and_get", None)
    if seconds <= 0 or read is None:
        return fetch(), None
    keys = [USER_STAMP.format(user_id), ALL_STAMP]
    result = read(hits, keys)
    if result is None:
        _entries.clear()
        return fetch(), None
    counts, stamps = result
    now = time.monotonic()
    entry = _entries.get(user_id)
    if entry is not None and entry[0] > now and entry[1] == tuple(stamps) and None not in stamps:
        return entry[2], counts
    if None in stamps:
        stamps = cache.stamps(keys, STAMP_SECONDS)  # a second round trip, once per stamp lifetime
    row = fetch()
    if row is not None and stamps is not None and None not in stamps:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[user_id] = (now + seconds, tuple(stamps), row)
    return row, counts


def user_changed(user_id) -> None:
    """The user's row or role memberships changed: every process reads them again."""
    _announce([USER_STAMP.format(user_id)], str(user_id))


def everyone_changed() -> None:
    """A row many users share changed (a role, a department, an organization): every process
    reads every user again. Rare (administration), one query per active user after it."""
    _announce([ALL_STAMP], None)


def forget_all() -> None:
    """Drop this process's copies (tests that change rows behind the services' back)."""
    _entries.clear()


def _announce(keys: list[str], user_id: str | None) -> None:
    # Not only after commit (core/events.py): a process that re-reads the row before the commit
    # tags the old row with the stamp in place; the first write makes that stamp a new one,
    # the second (after commit) invalidates what was copied in between.
    if connection.in_atomic_block:
        _restamp(keys, user_id)
    events.on_commit(lambda: _restamp(keys, user_id), what="auth cache stamp")


def _restamp(keys: list[str], user_id: str | None) -> None:
    if user_id is None:
        _entries.clear()
    else:
        _entries.pop(user_id, None)
    restamp = getattr(cache, "restamp", None)
    if restamp is not None:
        restamp(keys, STAMP_SECONDS)
