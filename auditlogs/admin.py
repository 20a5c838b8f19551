from django.contrib import admin

from auditlogs.models import AuditLog
from core.admin import OrgScopedAdmin


@admin.register(AuditLog)
class AuditLogAdmin(OrgScopedAdmin):
    """Read-only for everyone, superusers included: the log is append-only."""

    admin_permission_code = "audit.view"
    list_display = ["sequence", "created_at", "action", "actor_repr", "target_type", "target_repr", "organization"]
    list_filter = ["action", "target_type"]
    search_fields = ["action", "actor_repr", "target_repr", "target_id"]
    ordering = ["-created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
