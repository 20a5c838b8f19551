"""Canonical serialization and hashing of audit rows (shared by the writer and the verifier).

hash = SHA-256(prev_hash + canonical(payload)), where ``payload`` is every column of
the row except ``id``, ``prev_hash`` and ``hash``. The writer stores values already in
the shape the database hands back (``normalize``), and ``canonical`` smooths the few
differences a round trip through PostgreSQL can still make, so the hash computed at
write time is the hash recomputed at verify time:

- ``ip``: ``inet`` prints addresses its own way (``2001:DB8:0::1`` -> ``2001:db8::1``);
  both sides hash ``ipaddress``'s compressed form.
- ``changes``: ``jsonb`` keeps numbers as ``numeric`` (``1e20`` comes back as an int,
  ``1.0`` as ``1.0``): integral floats hash as ints (of their
  decimal text). NaN/Infinity, NUL characters and
  lone surrogates cannot be stored at all, so ``normalize`` replaces them.
- ``created_at``: hashed as ISO 8601 in UTC whatever the connection's time zone.
"""

import datetime as dt
import decimal
import functools
import hashlib
import ipaddress
import json
import math

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

GENESIS_HASH = "0" * 64

# Columns covered by the hash, in the order the payload lists them (the JSON is key-sorted anyway).
PAYLOAD_FIELDS = [
    "chain",
    "sequence",
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
    "created_at",
]


class AuditJSONEncoder(DjangoJSONEncoder):
    """Django's encoder (datetimes, dates, decimals, UUIDs...) that never refuses a value.

    An audit row that cannot be written makes the change fail, so odd values in
    ``changes`` (model instances, sets, bytes) are turned into something readable.
    """

    def default(self, o):
        if isinstance(o, models.Model):
            return str(o.pk)
        if isinstance(o, (set, frozenset)):
            return sorted(o, key=str)
        if isinstance(o, (bytes, bytearray, memoryview)):
            return bytes(o).hex()
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def clean_text(value: str) -> str:
    """PostgreSQL text and jsonb refuse NUL and unpaired surrogates: replace them."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _clean_json(value):
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # jsonb has no NaN/Infinity
    if isinstance(value, dict):
        return {clean_text(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


_NORMALIZE_ENCODER = AuditJSONEncoder()  # json.dumps(value, cls=AuditJSONEncoder), without a new encoder per call


def normalize(value):
    """What a JSON column will hand back, so the hash at write time equals the hash at verify time."""
    return _clean_json(json.loads(_NORMALIZE_ENCODER.encode(value)))


def normalize_ip(value) -> str | None:
    """The compressed text form of an address, or None when it is not one (never fail the change)."""
    if value in (None, ""):
        return None
    return _normalize_ip_text(str(value))


@functools.lru_cache(maxsize=4096)  # verify sees the same few addresses on most rows: parse each once
def _normalize_ip_text(text: str) -> str | None:
    text = text.strip().split("%", 1)[0]  # inet has no IPv6 zone ids
    if "/" in text:  # inet may print a prefix length; a single host has none
        text = text.split("/", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _canon_json(value):
    if isinstance(value, float) and value.is_integer():
        # jsonb keeps the decimal text: 1e300 comes back as 10**300, not as the double's exact value.
        return int(decimal.Decimal(repr(value)))
    if isinstance(value, dict):
        return {k: _canon_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canon_json(v) for v in value]
    return value


def _canon_float(text: str):
    """``parse_float`` hook: what ``_canon_json`` does to a float, done while parsing jsonb text."""
    value = float(text)
    return int(decimal.Decimal(repr(value))) if value.is_integer() else value


# Built once: json.loads(..., parse_float=...) would build a new decoder for every row.
_CANONICAL_DECODER = json.JSONDecoder(parse_float=_canon_float)


def load_canonical_json(text: str | None):
    """jsonb text -> the value ``_canon_json(json.loads(text))`` gives, in one C-speed pass (verify's hot path)."""
    return None if text is None else _CANONICAL_DECODER.decode(text)


def _id(value) -> str | None:
    return str(value) if value not in (None, "") else None


# One encoder, built once: json.dumps(..., cls=...) would build a new one for every row.
_CANONICAL_ENCODER = AuditJSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(row: dict) -> str:
    return _CANONICAL_ENCODER.encode(row)


# The C encoder behind _CANONICAL_ENCODER.encode(), made once instead of on every call; only values
# parsed from JSON go through it (never circular, so no markers).
_c_encoder = json.encoder.c_make_encoder and json.encoder.c_make_encoder(
    None,
    _CANONICAL_ENCODER.default,
    json.encoder.encode_basestring,
    None,
    _CANONICAL_ENCODER.key_separator,
    _CANONICAL_ENCODER.item_separator,
    True,
    False,
    True,
)
_encode_str = json.encoder.encode_basestring  # what the encoder does to a str (ensure_ascii off)


def _encode_value(value) -> str:
    cls = value.__class__
    if cls is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if cls is int:  # exactly int (bool is not): the encoder writes int.__repr__
        return int.__repr__(value)
    if _c_encoder is None:
        return _CANONICAL_ENCODER.encode(value)
    return "".join(_c_encoder(value, 0))


def canonical_payload(
    chain, sequence, organization, actor, actor_repr, action, target_type, target_id, target_repr, changes, ip,
    user_agent, request_id, created_at,
) -> str:  # fmt: skip
    """``canonical(payload)`` for a payload of exactly the hashed keys, without building the dict (verify's hot path).

    The keys are written in sorted order (what ``sort_keys`` does); every value is encoded as the
    canonical encoder would. The writer keeps using ``canonical``, so every test that writes rows
    and verifies them also checks that the two agree; test_chain.py compares them directly.
    """
    e = _encode_value
    return (
        f'{{"action":{e(action)},"actor":{e(actor)},"actor_repr":{e(actor_repr)},"chain":{e(chain)},'
        f'"changes":{e(changes)},"created_at":{e(created_at)},"ip":{e(ip)},"organization":{e(organization)},'
        f'"request_id":{e(request_id)},"sequence":{e(sequence)},"target_id":{e(target_id)},'
        f'"target_repr":{e(target_repr)},"target_type":{e(target_type)},"user_agent":{e(user_agent)}}}'
    )


def _utc_iso(value) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(dt.UTC).isoformat()


def payload_from_values(values: dict) -> dict:
    """The hashed payload from a dict of column values (``attname`` keys, as ``.values()`` gives)."""
    return {
        "chain": values["chain"],
        "sequence": int(values["sequence"]),
        "organization": _id(values["organization_id"]),
        "actor": _id(values["actor_id"]),
        "actor_repr": values["actor_repr"],
        "action": values["action"],
        "target_type": values["target_type"],
        "target_id": values["target_id"],
        "target_repr": values["target_repr"],
        "changes": _canon_json(values["changes"]),
        "ip": normalize_ip(values["ip"]),
        "user_agent": values["user_agent"],
        "request_id": values["request_id"],
        "created_at": _utc_iso(values["created_at"]),
    }


def row_payload(log) -> dict:
    return payload_from_values({name: getattr(log, name) for name in PAYLOAD_FIELDS})


def compute_hash(prev_hash: str, payload: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(payload)).encode()).hexdigest()


__all__ = [
    "GENESIS_HASH",
    "PAYLOAD_FIELDS",
    "AuditJSONEncoder",
    "canonical",
    "canonical_payload",
    "clean_text",
    "compute_hash",
    "load_canonical_json",
    "normalize",
    "normalize_ip",
    "payload_from_values",
    "row_payload",
]
