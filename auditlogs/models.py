from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import TenantQuerySet

PLATFORM_CHAIN = "platform"


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or remove audit rows from Python."""


class AuditLogQuerySet(TenantQuerySet):
    """Reads only: bulk UPDATE/DELETE through the ORM fail before they reach the database."""

    def update(self, **kwargs):
        raise AppendOnlyError("Audit rows are append-only.")

    def delete(self):
        raise AppendOnlyError("Audit rows are append-only.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit rows are append-only.")

    def update_or_create(self, *args, **kwargs):
        raise AppendOnlyError("Audit rows are append-only.")

    def _raw_delete(self, using=None):
        raise AppendOnlyError("Audit rows are append-only.")

    update.queryset_only = True
    delete.queryset_only = True


class AuditLog(models.Model):
    """Append-only and hash-chained per organization (``chain``); see auditlogs/chain.py.

    The database refuses UPDATE, DELETE and TRUNCATE on this table (trigger in a
    migration); the model refuses them too so mistakes fail loudly in Python first.
    """

    id = models.BigAutoField(primary_key=True)
    chain = models.CharField(max_length=64, editable=False, help_text="Organization id, or 'platform'.")
    sequence = models.PositiveBigIntegerField(editable=False)
    organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_repr = models.CharField(max_length=255, blank=True, help_text="E-mail of the actor, or 'system'.")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = models.Manager.from_queryset(AuditLogQuerySet)()

    class Meta:
        ordering = ["chain", "sequence"]
        constraints = [models.UniqueConstraint(fields=["chain", "sequence"], name="uniq_audit_chain_sequence")]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_time"),
            models.Index(fields=["organization", "target_type", "target_id"], name="audit_org_target"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.target_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit rows are append-only.")


class AuditChainHead(models.Model):
    """The tip of one chain. Locking this row serializes appends to that chain only."""

    chain = models.CharField(max_length=64, primary_key=True)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"{self.chain} @ {self.sequence}"
