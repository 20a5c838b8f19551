"""Read-only admin views of requests: every change goes through the services (and the API)."""

from django.contrib import admin

from accounts.catalog import REQUESTS_VIEW_ALL
from core.admin import OrgScopedAdmin, ReadOnlyMixin
from requests.models import Attachment, Comment, Request


class CommentInline(ReadOnlyMixin, admin.TabularInline):
    model = Comment
    fields = ["created_at", "author", "round", "body"]
    readonly_fields = fields
    extra = 0


class AttachmentInline(ReadOnlyMixin, admin.TabularInline):
    model = Attachment
    fields = ["created_at", "uploaded_by", "name", "size", "content_type", "sha256"]
    readonly_fields = fields
    extra = 0


@admin.register(Request)
class RequestAdmin(ReadOnlyMixin, OrgScopedAdmin):
    admin_permission_code = REQUESTS_VIEW_ALL
    list_display = ["reference", "title", "definition", "requester", "status", "current_stage", "round", "created_at"]
    list_filter = ["status", "definition"]
    search_fields = ["reference", "title", "requester__email"]
    list_select_related = ["definition", "requester"]
    readonly_fields = [
        "reference",
        "title",
        "definition",
        "workflow_version",
        "requester",
        "department",
        "status",
        "current_stage",
        "round",
        "returned_from_stage",
        "data",
        "submitted_at",
        "completed_at",
        "created_at",
    ]
    fields = readonly_fields
    inlines = [CommentInline, AttachmentInline]

    def has_view_permission(self, request, obj=None):
        return self._has_code(request) and self._owns(request, obj)
