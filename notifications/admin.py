from django.contrib import admin, messages

from core.admin import OrgScopedAdmin
from notifications import services
from notifications.models import DeliveryStatus, EmailDelivery, Notification


class ReadOnlyOrgAdmin(OrgScopedAdmin):
    """Rows written by services only: the admin looks, it does not edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(ReadOnlyOrgAdmin):
    list_display = [
        "to_address",
        "kind",
        "status",
        "attempts",
        "last_attempt_at",
        "sent_at",
        "short_error",
        "created_at",
    ]
    list_filter = ["status", "notification__kind", "created_at"]
    search_fields = ["to_address", "notification__title"]
    date_hierarchy = "created_at"
    list_select_related = ["notification"]
    readonly_fields = [
        "notification",
        "to_address",
        "status",
        "attempts",
        "last_error",
        "last_attempt_at",
        "next_attempt_at",
        "sent_at",
        "created_at",
    ]
    actions = ["retry_failed"]

    @admin.display(description="kind", ordering="notification__kind")
    def kind(self, obj):
        return obj.notification.get_kind_display()

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error[:80] + "...") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description="Retry selected failed deliveries")
    def retry_failed(self, request, queryset):
        count = 0
        for delivery in queryset.filter(status=DeliveryStatus.FAILED):
            services.retry_failed_delivery(actor=request.user, delivery=delivery)
            count += 1
        self.message_user(request, f"Queued {count} delivery(ies) again.", messages.SUCCESS)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyOrgAdmin):
    list_display = ["title", "recipient", "kind", "read_at", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["title", "recipient__email"]
    list_select_related = ["recipient"]
    readonly_fields = ["recipient", "kind", "title", "body", "request", "data", "read_at", "created_at"]
