"""Canonical serialization and hashing of audit rows (shared by the writer and the verifier)."""

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder

GENESIS_HASH = "0" * 64


def canonical(row: dict) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder, ensure_ascii=False)


def row_payload(log) -> dict:
    return {
        "chain": log.chain,
        "sequence": log.sequence,
        "organization": str(log.organization_id) if log.organization_id else None,
        "actor": str(log.actor_id) if log.actor_id else None,
        "actor_repr": log.actor_repr,
        "action": log.action,
        "target_type": log.target_type,
        "target_id": log.target_id,
        "target_repr": log.target_repr,
        "changes": log.changes,
        "ip": log.ip,
        "user_agent": log.user_agent,
        "request_id": log.request_id,
        "created_at": log.created_at.isoformat(),
    }


def compute_hash(prev_hash: str, payload: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(payload)).encode()).hexdigest()


def normalize(value):
    """What a JSON column will hand back, so the hash at write time equals the hash at verify time."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
