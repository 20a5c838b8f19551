"""``/api/v1/workflows/``: definitions, their draft, publishing and versions (docs/api.md).

Writing needs ``workflows.manage``; any member of the organization reads the active,
published workflows (to submit requests); drafts and inactive ones need ``workflows.manage``.
"""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.response import Response

from accounts.catalog import WORKFLOWS_MANAGE
from core.api import OrgScopedViewMixin
from core.exceptions import NotFound
from core.filters import FilterBackend
from core.idempotency import idempotent
from workflows import selectors, services
from workflows.filters import WorkflowFilter
from workflows.models import Step, VersionStatus, WorkflowVersion
from workflows.serializers import (
    VersionContentSerializer,
    VersionSerializer,
    WorkflowCreateSerializer,
    WorkflowSerializer,
    WorkflowUpdateSerializer,
)


class WorkflowViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    serializer_class = WorkflowSerializer
    lookup_value_converter = "slug"  # a workflow is addressed by id or by key
    required_permissions = {"write": WORKFLOWS_MANAGE, "draft": WORKFLOWS_MANAGE}
    filter_backends = [FilterBackend, SearchFilter, OrderingFilter]
    filterset_class = WorkflowFilter
    search_fields = ["key", "name", "description"]
    ordering_fields = ["name", "key", "created_at"]
    ordering = ["name"]

    def _can_manage(self) -> bool:
        return self.request.user.is_authenticated and self.request.user.has_code(WORKFLOWS_MANAGE)

    def get_queryset(self):
        if self.organization is None:
            return selectors.definitions_for(organization=None).none()
        qs = selectors.definitions_for(organization=self.organization)
        statuses = [VersionStatus.PUBLISHED]
        if self._can_manage():
            statuses.append(VersionStatus.DRAFT)
        else:
            qs = qs.filter(is_active=True, versions__status=VersionStatus.PUBLISHED)
        return qs.prefetch_related(
            Prefetch(
                "versions",
                queryset=WorkflowVersion.objects.filter(status__in=statuses)
                .select_related("published_by")
                .prefetch_related(Prefetch("steps", queryset=Step.objects.order_by("stage", "position", "name"))),
                to_attr="current_versions",
            )
        )

    def get_object(self):
        lookup = self.kwargs["pk"]
        definition = selectors.definition_get(organization=self.organization, workflow=lookup)
        # Re-read through the (visibility-filtered, prefetched) queryset.
        obj = self.get_queryset().filter(pk=definition.pk).first()
        if obj is None:
            raise NotFound("Workflow not found.")
        self.check_object_permissions(self.request, obj)
        return obj

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "can_manage": self._can_manage()}

    def _detail(self, definition, code=status.HTTP_200_OK):
        obj = self.get_queryset().get(pk=definition.pk)
        return Response(self.get_serializer(obj).data, status=code)

    @extend_schema(request=WorkflowCreateSerializer, responses={201: WorkflowSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = WorkflowCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        definition = services.workflow_create(actor=request.user, organization=self.organization, **data.validated_data)
        return self._detail(definition, status.HTTP_201_CREATED)

    @extend_schema(request=WorkflowUpdateSerializer, responses={200: WorkflowSerializer})
    def update(self, request, *args, **kwargs):
        definition = self.get_object()
        data = WorkflowUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        services.workflow_update(actor=request.user, definition=definition, **data.validated_data)
        return self._detail(definition)

    def destroy(self, request, *args, **kwargs):
        services.workflow_delete(actor=request.user, definition=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], responses={200: VersionSerializer})
    @extend_schema(methods=["PUT"], request=VersionContentSerializer, responses={200: VersionSerializer})
    @action(detail=True, methods=["get", "put"])
    def draft(self, request, pk=None):
        definition = self.get_object()
        if request.method == "PUT":
            data = VersionContentSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            current = selectors.draft_for(definition=definition) or selectors.published_for(definition=definition)
            content = services.version_as_dict(current) if current else {}
            content.update(data.validated_data)
            version = services.draft_save(
                actor=request.user,
                definition=definition,
                form_schema=content.get("form_schema", {"type": "object", "properties": {}}),
                distinct_approvers=content.get("distinct_approvers", False),
                steps=content.get("steps", []),
            )
            version = selectors.versions_for(definition=definition).get(pk=version.pk)
            return Response(VersionSerializer(version).data)
        version = selectors.draft_for(definition=definition)
        if version is None:
            raise NotFound(
                "This workflow has no draft; PUT draft/ creates one from the published version.", code="no_draft"
            )
        return Response(VersionSerializer(version).data)

    @extend_schema(request=None, responses={200: WorkflowSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def publish(self, request, pk=None):
        definition = self.get_object()
        draft = selectors.draft_for(definition=definition)
        if draft is None:
            raise NotFound("This workflow has no draft to publish.", code="no_draft")
        services.version_publish(actor=request.user, version=draft)
        return self._detail(definition)

    @extend_schema(responses={200: VersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        definition = self.get_object()
        qs = selectors.versions_for(definition=definition)
        if not self._can_manage():
            qs = qs.filter(status=VersionStatus.PUBLISHED)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(VersionSerializer(page, many=True).data)
