"""Webhook endpoints and their delivery log in the admin (``webhooks.manage``); writes go through the services."""

from django.contrib import admin, messages
from django.db import models

from accounts.catalog import WEBHOOKS_MANAGE
from core.admin import OrgScopedAdmin, ReadOnlyMixin, call_service
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrgScopedAdmin):
    admin_permission_code = WEBHOOKS_MANAGE
    list_display = ["url", "events", "is_active", "failing_since", "disabled_at", "organization"]
    list_filter = ["is_active"]
    search_fields = ["url"]
    editable = ["url", "events", "is_active"]
    readonly_fields = ["failing_since", "disabled_at", "disabled_reason", "previous_secret_expires_at"]
    actions = ["send_test_event"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def create_via_service(self, request, form):
        endpoint = call_service(
            services.endpoint_create,
            actor=request.user,
            organization=self.organization_for(request, form),
            **{f: form.cleaned_data.get(f) for f in self.editable},
        )
        # Shown once, as in the API: the admin never displays it again.
        self.message_user(request, f"Signing secret (copy it now, it is not shown again): {endpoint.secret}")
        return endpoint

    def update_via_service(self, request, stored, form):
        call_service(services.endpoint_update, actor=request.user, endpoint=stored, **self.changed(form, self.editable))

    def delete_via_service(self, request, obj):
        call_service(services.endpoint_delete, actor=request.user, endpoint=obj)

    @admin.action(description="Send a test event")
    def send_test_event(self, request, queryset):
        for endpoint in queryset:
            services.send_test_event(actor=request.user, endpoint=endpoint)
        self.message_user(request, f"Test event queued for {queryset.count()} endpoint(s).", messages.SUCCESS)


class WebhookAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "created_at", "succeeded", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, OrgScopedAdmin):
    admin_permission_code = WEBHOOKS_MANAGE
    list_display = ["event_type", "endpoint", "status", "attempts", "last_status_code", "created_at", "delivered_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["message_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    readonly_fields = [
        "endpoint",
        "message_id",
        "event_type",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
    ]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver")
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("endpoint"):
            services.redeliver(actor=request.user, delivery=delivery)
        self.message_user(request, f"{queryset.count()} delivery(ies) queued again.", messages.SUCCESS)
