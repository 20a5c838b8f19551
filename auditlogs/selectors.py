"""Reads of the audit log. Every API/admin/command read starts here, scoped to one organization's chain."""

from django.db.models import QuerySet

from auditlogs.models import AuditLog
from auditlogs.verify import chain_of


def audit_logs_for(*, organization) -> QuerySet[AuditLog]:
    """The organization's rows (its chain), newest last by ``sequence``."""
    if organization is None:
        return AuditLog.objects.none()
    return AuditLog.objects.for_organization(organization).filter(chain=chain_of(organization)).order_by("sequence")


def organizations_all():
    """The organizations, reached through the audit row's foreign key: auditlogs sits below
    organizations (docs/architecture.md, "App layers") and does not import it."""
    return AuditLog._meta.get_field("organization").related_model.objects.all()


def organization_by_slug(slug: str):
    return organizations_all().filter(slug=slug).first()
