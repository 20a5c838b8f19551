from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts.catalog import REQUESTS_CREATE
from approvals.lifecycle import services as lifecycle
from auditlogs.export import aiter_sync
from auditlogs.views import FirstRendererNegotiation
from core.api import OrgScopedViewMixin
from core.exceptions import NotFound, ValidationFailed
from core.filters import FilterBackend, query_params
from core.idempotency import idempotent
from core.parsers import BoundedJSONParser
from requests import export, selectors, services
from requests.filters import ExportParams, RequestFilter
from requests.models import Attachment
from requests.route_preview import route_preview
from requests.serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CancelSerializer,
    CommentCreateSerializer,
    CommentSerializer,
    PreviewSerializer,
    RequestCreateSerializer,
    RequestDetailSerializer,
    RequestListSerializer,
    RequestUpdateSerializer,
    ResubmitSerializer,
    TimelineEntrySerializer,
    request_detail_payload,
)
from workflows.selectors import published_version_for


class RequestViewSet(OrgScopedViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    required_permissions = {"create": REQUESTS_CREATE, "preview_route": REQUESTS_CREATE}
    filter_backends = [FilterBackend, OrderingFilter]
    filterset_class = RequestFilter
    ordering_fields = ["created_at", "submitted_at", "completed_at", "updated_at", "reference", "title", "status"]
    ordering = ["-created_at"]
    serializer_class = RequestListSerializer
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        if self.organization is None:  # schema generation
            from requests.models import Request

            return Request.objects.none()
        return selectors.request_list(user=self.request.user)

    def _detail(self, request_id, status=200):
        obj = selectors.request_get(user=self.request.user, request_id=request_id)
        return Response(request_detail_payload(obj), status=status)

    @extend_schema(responses={200: RequestListSerializer(many=True)})
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=sorted(export.FORMATS), required=True)],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, export.FORMATS["xlsx"]): OpenApiTypes.BINARY},
    )
    @action(detail=False, methods=["get"], content_negotiation_class=FirstRendererNegotiation)
    def export(self, request):
        """The list (same filters, what the caller may see) as CSV or XLSX, streamed; audited."""
        fmt = query_params(ExportParams, request)["format"]
        queryset = self.filter_queryset(self.get_queryset())  # validates the filters (400)
        filters = {k: v for k, v in request.query_params.items() if k in RequestFilter.base_filters}
        services.requests_export_record(actor=request.user, fmt=fmt, filters=filters)
        make = export.iter_csv if fmt == "csv" else export.iter_xlsx
        chunks = make(queryset, organization=self.organization)
        is_asgi = hasattr(request._request, "scope")
        response = StreamingHttpResponse(aiter_sync(chunks) if is_asgi else chunks, content_type=export.FORMATS[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="requests-{self.organization.slug}-{stamp}.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(responses={200: RequestDetailSerializer})
    def retrieve(self, request, pk=None):
        return self._detail(pk)

    @extend_schema(request=RequestCreateSerializer, responses={201: RequestDetailSerializer})
    @idempotent
    def create(self, request):
        s = RequestCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        obj = services.request_create(actor=request.user, **s.validated_data)
        return Response(request_detail_payload(selectors.created_request_detail(request=obj)), status=201)

    @extend_schema(request=RequestUpdateSerializer, responses={200: RequestDetailSerializer})
    def partial_update(self, request, pk=None):
        s = RequestUpdateSerializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        services.request_update(actor=request.user, request_id=pk, **s.validated_data)
        return self._detail(pk)

    @extend_schema(request=None, responses={200: RequestDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def submit(self, request, pk=None):
        lifecycle.request_submit(actor=request.user, request_id=pk)
        return self._detail(pk)

    @extend_schema(request=None, responses={200: RequestDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def withdraw(self, request, pk=None):
        lifecycle.request_withdraw(actor=request.user, request_id=pk)
        return self._detail(pk)

    @extend_schema(request=CancelSerializer, responses={200: RequestDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        s = CancelSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        lifecycle.request_cancel(actor=request.user, request_id=pk, reason=s.validated_data["reason"])
        return self._detail(pk)

    @extend_schema(request=ResubmitSerializer, responses={200: RequestDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def resubmit(self, request, pk=None):
        s = ResubmitSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        lifecycle.request_resubmit(actor=request.user, request_id=pk, **s.validated_data)
        return self._detail(pk)

    @extend_schema(responses={200: TimelineEntrySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        obj = selectors.request_get(user=request.user, request_id=pk, detail=False)
        rows = selectors.timeline(request=obj)
        return Response(TimelineEntrySerializer(rows, many=True).data)

    @extend_schema(request=PreviewSerializer)
    @action(detail=False, methods=["post"], url_path="preview-route")
    def preview_route(self, request):
        s = PreviewSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        version = published_version_for(organization=self.organization, workflow=s.validated_data["workflow"])
        return Response(route_preview(version=version, requester=request.user, data=s.validated_data["data"]))

    # --- comments -------------------------------------------------------------------------
    @extend_schema(request=CommentCreateSerializer, responses={200: CommentSerializer(many=True)})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk=None):
        if request.method == "POST":
            return self._comment_create(request, pk=pk)
        obj = selectors.request_get(user=request.user, request_id=pk, detail=False)
        rows = obj.comments.select_related("author")
        return Response(CommentSerializer(rows, many=True).data)

    @idempotent
    def _comment_create(self, request, pk=None):
        s = CommentCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        comment = services.comment_add(actor=request.user, request_id=pk, body=s.validated_data["body"])
        return Response(CommentSerializer(comment).data, status=201)

    # --- attachments ----------------------------------------------------------------------
    @extend_schema(request={"multipart/form-data": AttachmentUploadSerializer}, responses={200: AttachmentSerializer})
    @action(detail=True, methods=["get", "post"])
    def attachments(self, request, pk=None):
        if request.method == "POST":
            return self._attachment_create(request, pk=pk)
        obj = selectors.request_get(user=request.user, request_id=pk, detail=False)
        rows = obj.attachments.select_related("uploaded_by")
        return Response(AttachmentSerializer(rows, many=True).data)

    @idempotent
    def _attachment_create(self, request, pk=None):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed(details={"file": ["No file was submitted (multipart field 'file')."]})
        attachment = services.attachment_add(actor=request.user, request_id=pk, file=upload)
        return Response(AttachmentSerializer(attachment).data, status=201)

    @extend_schema(
        parameters=[OpenApiParameter("attachment_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="attachments/<uuid:attachment_id>/download")
    def download(self, request, pk=None, attachment_id=None):
        obj = selectors.request_get(user=request.user, request_id=pk, detail=False)
        attachment = Attachment.objects.filter(request=obj, pk=attachment_id).first()
        if attachment is None:
            raise NotFound("Attachment not found.")
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.name,
            content_type=attachment.content_type or "application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Content-Length"] = str(attachment.size)
        return response
