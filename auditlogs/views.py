from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from auditlogs import selectors, services
from auditlogs.export import FORMATS, aiter_sync, guarded, iter_export
from auditlogs.filters import AuditLogFilter
from auditlogs.permissions import AUDIT_VIEW
from auditlogs.serializers import AuditLogSerializer, VerifySerializer
from auditlogs.verify import verify_chain
from core.api import OrgScopedViewMixin
from core.exceptions import ValidationFailed


class FirstRendererNegotiation(DefaultContentNegotiation):
    """The export owns ``?format=`` (csv|jsonl): DRF must not read it as a renderer override."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AuditLogViewSet(OrgScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's organization's audit chain. Reading, exporting and verifying need ``audit.view``."""

    serializer_class = AuditLogSerializer
    required_permissions = {"read": AUDIT_VIEW, "verify": AUDIT_VIEW, "export": AUDIT_VIEW}
    filterset_class = AuditLogFilter
    ordering_fields = ["sequence", "created_at"]
    ordering = ["-sequence"]
    lookup_value_converter = "int"  # audit rows are numbered

    def get_queryset(self):
        return selectors.audit_logs_for(organization=self.organization)

    @extend_schema(responses={200: VerifySerializer})
    @action(detail=False, methods=["get"])
    def verify(self, request):
        result = verify_chain(organization=self.organization)
        return Response({k: result[k] for k in ("ok", "checked", "first_bad", "reason", "first_bad_id")})

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=sorted(FORMATS), required=True)],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/x-ndjson"): OpenApiTypes.STR},
    )
    @action(detail=False, methods=["get"], content_negotiation_class=FirstRendererNegotiation)
    def export(self, request):
        fmt = request.query_params.get("format", "")
        if fmt not in FORMATS:
            raise ValidationFailed(details={"format": [f"One of: {', '.join(sorted(FORMATS))}."]})
        queryset = self.filter_queryset(self.get_queryset()).order_by("sequence")  # validates the filters (400)
        filters = {k: v for k, v in request.query_params.items() if k in AuditLogFilter.base_filters}
        record = services.record_export(actor=request.user, organization=self.organization, fmt=fmt, filters=filters)
        # A consistent cut: everything before the export's own row, nothing written while it streams.
        queryset = queryset.filter(sequence__lt=record.sequence)
        chunks = guarded(iter_export(queryset, fmt), fmt)
        is_asgi = hasattr(request._request, "scope")
        response = StreamingHttpResponse(aiter_sync(chunks) if is_asgi else chunks, content_type=FORMATS[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-{self.organization.slug}-{stamp}.{fmt}"'
        response["Cache-Control"] = "no-store"
        response["X-Audit-Export-Sequence"] = str(record.sequence)
        return response
