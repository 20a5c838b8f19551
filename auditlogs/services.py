"""The one writer of audit rows. Call it inside the transaction of the change it records."""

from typing import Any

from django.db import models, transaction
from django.utils import timezone

from auditlogs.chain import compute_hash, normalize, row_payload
from auditlogs.models import PLATFORM_CHAIN, AuditChainHead, AuditLog
from core import context


def chain_for(organization_id) -> str:
    return str(organization_id) if organization_id else PLATFORM_CHAIN


def audit_record(
    *,
    action: str,
    actor=None,
    organization=None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one row to the organization's chain.

    The chain head row is locked (``SELECT ... FOR UPDATE``) so concurrent writers
    line up in one sequence; the lock is held only until the surrounding
    transaction commits, so services record audit last.
    """
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
        target_repr = target_repr or str(target)[:300]
    org_id = organization.pk if isinstance(organization, models.Model) else organization
    if org_id is None and actor is not None and getattr(actor, "organization_id", None):
        org_id = actor.organization_id
    ctx = context.current()
    chain = chain_for(org_id)
    with transaction.atomic():
        AuditChainHead.objects.bulk_create([AuditChainHead(chain=chain)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(chain=chain)
        log = AuditLog(
            chain=chain,
            sequence=head.sequence + 1,
            organization_id=org_id,
            actor=actor if actor is not None and actor.pk else None,
            actor_repr=(actor.email if actor is not None else "system")[:255],
            action=action,
            target_type=target_type,
            target_id=str(target_id)[:64],
            target_repr=str(target_repr)[:300],
            changes=normalize(changes or {}),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            request_id=ctx.request_id,
            created_at=timezone.now(),
            prev_hash=head.hash,
        )
        log.hash = compute_hash(head.hash, row_payload(log))
        log.save(force_insert=True)
        AuditChainHead.objects.filter(chain=chain).update(sequence=log.sequence, hash=log.hash)
    return log


def model_changes(instance: models.Model, before: dict[str, Any] | None, fields: list[str] | None = None) -> dict:
    """``{field: [before, after]}`` for the fields that changed (or every listed field on create)."""
    names = fields or [f.attname for f in instance._meta.concrete_fields]
    out = {}
    for name in names:
        after = getattr(instance, name, None)
        prior = (before or {}).get(name)
        if before is None or prior != after:
            out[name] = [prior, after]
    return out


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    names = fields or [f.attname for f in instance._meta.concrete_fields]
    return {name: getattr(instance, name, None) for name in names}
