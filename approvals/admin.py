"""Read-only admin views of tasks and delegations: decisions happen through the services."""

from django.contrib import admin

from accounts.catalog import REQUESTS_VIEW_ALL
from approvals.models import ApprovalTask, Assignment, Delegation
from core.admin import OrgScopedAdmin, ReadOnlyMixin


class AssignmentInline(ReadOnlyMixin, admin.TabularInline):
    model = Assignment
    fields = ["assignee", "on_behalf_of", "reason", "is_active", "decision", "comment", "decided_at"]
    readonly_fields = fields
    extra = 0


@admin.register(ApprovalTask)
class ApprovalTaskAdmin(ReadOnlyMixin, OrgScopedAdmin):
    admin_permission_code = REQUESTS_VIEW_ALL
    list_display = ["request", "step", "stage", "round", "status", "due_at", "escalation_level"]
    list_filter = ["status"]
    search_fields = ["request__reference", "step__name"]
    list_select_related = ["request", "step"]
    readonly_fields = [
        "request",
        "step",
        "stage",
        "round",
        "status",
        "outcome_reason",
        "activated_at",
        "completed_at",
        "due_at",
        "remind_at",
        "reminded_at",
        "escalation_level",
        "next_escalation_at",
    ]
    fields = readonly_fields
    inlines = [AssignmentInline]


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyMixin, OrgScopedAdmin):
    admin_permission_code = REQUESTS_VIEW_ALL
    list_display = ["from_user", "to_user", "starts_at", "ends_at", "workflow", "deleted_at"]
    list_select_related = ["from_user", "to_user", "workflow"]
    readonly_fields = ["from_user", "to_user", "starts_at", "ends_at", "workflow", "reason", "deleted_at"]
    fields = readonly_fields

    def get_queryset(self, request):
        qs = Delegation.all_objects.select_related("from_user", "to_user", "workflow")
        if request.user.is_superuser:
            return qs
        return qs.filter(organization_id=request.user.organization_id)
