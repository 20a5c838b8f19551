"""Soft delete and restore, shared by every soft-deletable model; audited."""

from django.db import transaction
from django.utils import timezone

from auditlogs.services import audit_record


def soft_delete(*, actor, instance, action: str) -> None:
    if instance.deleted_at is not None:
        return
    with transaction.atomic():
        instance.deleted_at = timezone.now()
        instance.save(update_fields=["deleted_at", "updated_at"])
        audit_record(
            action=action,
            actor=actor,
            organization=getattr(instance, "organization_id", None),
            target=instance,
            changes={"deleted_at": [None, instance.deleted_at]},
        )


def restore(*, actor, instance, action: str) -> None:
    if instance.deleted_at is None:
        return
    with transaction.atomic():
        before = instance.deleted_at
        instance.deleted_at = None
        instance.save(update_fields=["deleted_at", "updated_at"])
        audit_record(
            action=action,
            actor=actor,
            organization=getattr(instance, "organization_id", None),
            target=instance,
            changes={"deleted_at": [before, None]},
        )
