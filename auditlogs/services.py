"""The one writer of audit rows. Call it inside the transaction of the change it records."""

from typing import Any

from django.db import connections, models, router, transaction
from django.utils import timezone

from auditlogs.chain import GENESIS_HASH, clean_text, compute_hash, normalize, normalize_ip, row_payload
from auditlogs.models import PLATFORM_CHAIN, AuditChainHead, AuditLog
from core import context, metrics
from core.write_batch import WriteBatch


def chain_for(organization_id) -> str:
    return str(organization_id) if organization_id else PLATFORM_CHAIN


def log_values(
    *,
    action: str,
    actor=None,
    organization=None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    changes: dict[str, Any] | None = None,
    ctx: context.RequestContext | None = None,
) -> dict[str, Any]:
    """The column values (``attname`` keys) of the row ``audit_record`` appends, each in its stored form.

    Not yet in it: ``sequence``, ``created_at`` and the hashes, which are taken under the chain
    lock. Split out so bench/audit_verify.py seeds rows that are what the writer stores without
    a copy of its rules.
    """
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or (str(target.pk) if target.pk is not None else "")
        target_repr = target_repr or str(target)
    org_id = organization.pk if isinstance(organization, models.Model) else organization
    if org_id is None and actor is not None and getattr(actor, "organization_id", None):
        org_id = actor.organization_id
    if ctx is None:
        ctx = context.current()
    return {
        "chain": chain_for(org_id),
        "organization_id": org_id,
        "actor_id": actor.pk if actor is not None and actor.pk else None,
        "actor_repr": clean_text(actor.email if actor is not None else "system")[:255],
        "action": action,
        "target_type": clean_text(str(target_type))[:64],
        "target_id": clean_text(str(target_id))[:64],
        "target_repr": clean_text(str(target_repr))[:300],
        "changes": normalize(changes or {}),
        "ip": normalize_ip(ctx.ip),
        "user_agent": clean_text(ctx.user_agent or "")[:512],
        "request_id": clean_text(ctx.request_id or "")[:64],
    }


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
    """Append one row to the organization's chain (``audit_records`` with one entry)."""
    return audit_records(
        [
            {
                "action": action,
                "actor": actor,
                "organization": organization,
                "target": target,
                "target_type": target_type,
                "target_id": target_id,
                "target_repr": target_repr,
                "changes": changes,
            }
        ]
    )[0]


def audit_records(entries: list[dict[str, Any]], *, batch: WriteBatch | None = None) -> list[AuditLog]:
    """Append the rows of one change (``audit_record``'s keyword arguments, one dict each), in order.

    The chain head row is locked (an upsert that bumps its sequence by the number of rows) so
    concurrent writers line up in one sequence; the lock is held only until the surrounding
    transaction commits, so services record audit last. On PostgreSQL a change costs two round
    trips however many rows it writes. No savepoint is taken: if the rows cannot be written,
    the surrounding transaction (the change) fails too.

    ``batch``: the change's writes not sent yet (issue 14): they go in the statement that takes
    the chain lock, one round trip less; they must not depend on the audit rows (nothing does).
    """
    if batch is not None and not entries:
        batch.execute()
        return []
    ctx = context.current()
    logs = [AuditLog(**log_values(**entry, ctx=ctx)) for entry in entries]
    using = router.db_for_write(AuditLog)
    by_chain: dict[str, list[AuditLog]] = {}
    for log in logs:
        by_chain.setdefault(log.chain, []).append(log)
    with transaction.atomic(using=using, savepoint=False):
        if batch is not None and connections[using].vendor != "postgresql":
            batch.execute()
        for chain in sorted(by_chain):  # one lock order for every writer: no deadlock between chains
            if connections[using].vendor == "postgresql":
                _append_postgresql(chain, by_chain[chain], using, batch)
                batch = None  # sent with the first chain's head
            else:
                for log in by_chain[chain]:
                    _append_portable(log, using)
    for log in logs:
        log._state.adding = False
        log._state.db = using
    metrics.count_audited(entries)
    return logs


def _append_postgresql(chain: str, logs: list[AuditLog], using: str, batch: WriteBatch | None = None) -> None:
    """Bump-and-lock the head by ``len(logs)`` (creating it if needed), then insert the rows + store the head hash.

    ``batch``'s pending writes go in the first statement, before the head's upsert."""
    connection = connections[using]
    head_table = AuditChainHead._meta.db_table
    count = len(logs)
    bump = (
        f"INSERT INTO {head_table} (chain, sequence, hash) VALUES (%s, %s, %s) "  # noqa: S608 (table names are ours)
        f"ON CONFLICT (chain) DO UPDATE SET sequence = {head_table}.sequence + EXCLUDED.sequence "
        "RETURNING sequence, hash"
    )
    last, prev_hash = (batch if batch is not None else WriteBatch(using)).execute_returning(
        bump, [chain, count, GENESIS_HASH]
    )
    with connection.cursor() as cursor:
        now = timezone.now()  # taken under the lock: time never runs backwards along a chain
        for offset, log in enumerate(logs):
            log.sequence, log.prev_hash, log.created_at = last - count + 1 + offset, prev_hash, now
            log.hash = prev_hash = compute_hash(log.prev_hash, row_payload(log))
        fields = [f for f in AuditLog._meta.concrete_fields if f.attname != "id"]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        row = f"({', '.join(['%s'] * len(fields))})"
        values = [f.get_db_prep_save(getattr(log, f.attname), connection) for log in logs for f in fields]
        cursor.execute(
            f"WITH ins AS (INSERT INTO {AuditLog._meta.db_table} ({columns}) "  # noqa: S608
            f"VALUES {', '.join([row] * count)} RETURNING id, sequence) "
            f"UPDATE {head_table} SET hash = %s WHERE chain = %s "
            "RETURNING (SELECT json_agg(json_build_array(sequence, id)) FROM ins)",
            [*values, prev_hash, chain],
        )
        ids = {int(seq): pk for seq, pk in cursor.fetchone()[0]}
        for log in logs:
            log.id = ids[log.sequence]


def _append_portable(log: AuditLog, using: str) -> None:
    """Any other database (the embedded SQLite default): the ORM, with a row lock where supported."""
    AuditChainHead.objects.using(using).bulk_create([AuditChainHead(chain=log.chain)], ignore_conflicts=True)
    head = AuditChainHead.objects.using(using).select_for_update().get(chain=log.chain)
    log.sequence = head.sequence + 1
    log.prev_hash = head.hash
    log.created_at = timezone.now()
    log.hash = compute_hash(log.prev_hash, row_payload(log))
    log.save(force_insert=True, using=using)
    AuditChainHead.objects.using(using).filter(chain=log.chain).update(sequence=log.sequence, hash=log.hash)


# Never copied into the log: a change is recorded as "changed", without the value.
SECRET_FIELDS = frozenset({"password"})
REDACTED = "[redacted]"


def _default_fields(instance: models.Model) -> list[str]:
    """Every concrete field but bookkeeping timestamps (``auto_now``) that change on every save."""
    return [f.attname for f in instance._meta.concrete_fields if not getattr(f, "auto_now", False)]


def model_changes(instance: models.Model, before: dict[str, Any] | None, fields: list[str] | None = None) -> dict:
    """``{field: [before, after]}`` for the fields that changed (or every listed field on create).

    Secret fields (``password``) show as ``[redacted]``: the log says they changed, never their value.
    """
    names = fields or _default_fields(instance)
    out = {}
    for name in names:
        after = getattr(instance, name, None)
        prior = (before or {}).get(name)
        if before is None or prior != after:
            if name in SECRET_FIELDS:
                out[name] = [REDACTED if prior else None, REDACTED if after else None]
            else:
                out[name] = [prior, after]
    return out


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    names = fields or _default_fields(instance)
    return {name: getattr(instance, name, None) for name in names}


def record_export(*, actor, organization, fmt: str, filters: dict[str, Any]) -> AuditLog:
    """``audit.exported``: who exported which rows of which chain, and how. Committed before the stream starts."""
    with transaction.atomic():
        return audit_record(
            action="audit.exported",
            actor=actor,
            organization=organization,
            target_type="auditlogs.auditlog",
            target_repr=f"audit log export ({fmt})",
            changes={"format": fmt, "filters": {k: v for k, v in filters.items() if v not in (None, "", [])}},
        )


def save_audited(*, actor, instance: models.Model, fields: dict[str, Any], tracked: list[str], action: str) -> dict:
    """Apply ``fields`` to ``instance``, save it, and audit what changed among ``tracked``.

    Call inside the caller's transaction. Returns the changes (empty: nothing audited).
    """
    before = snapshot(instance, tracked)
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.save()
    changes = model_changes(instance, before, tracked)
    if changes:
        audit_record(
            action=action,
            actor=actor,
            organization=getattr(instance, "organization_id", None),
            target=instance,
            changes=changes,
        )
    return changes


def delete_audited(*, actor, instance: models.Model, tracked: list[str], action: str) -> None:
    """Audit the row's last state, then delete it (inside the caller's transaction)."""
    audit_record(
        action=action,
        actor=actor,
        organization=getattr(instance, "organization_id", None),
        target=instance,
        changes=model_changes(instance, None, tracked),
    )
    instance.delete()
