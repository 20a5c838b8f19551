"""Shared DRF building blocks: org-scoped related fields and viewset plumbing."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.permissions import HasPermissionCode


@extend_schema_field(OpenApiTypes.UUID)
class OrgRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key whose choices are the caller's organization's rows only.

    ``scope`` builds the queryset from the organization, e.g.
    ``OrgRelatedField(scope=lambda org: Department.objects.for_organization(org))``.
    """

    def __init__(self, *, scope, **kwargs):
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        org = getattr(getattr(request, "user", None), "organization", None)
        if org is None:
            return self.scope(None).none()
        return self.scope(org)


class OrgScopedViewMixin:
    """Views over tenant data: ``self.organization`` is the caller's organization."""

    permission_classes = [HasPermissionCode]
    required_permissions: dict[str, str] = {}

    @property
    def organization(self):
        # None only while drf-spectacular inspects the view: querysets are then empty.
        return getattr(self.request.user, "organization", None)
