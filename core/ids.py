"""Ids given as values (request bodies, ``key|id`` references): the one parser.

Ids in URL paths never get here: routes use the ``uuid`` path converter (``core/routers.py``), so a
malformed id does not match and is the JSON 404.
"""

from __future__ import annotations

import uuid


def parse_uuid(value) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is not one (a key, an e-mail, garbage)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
