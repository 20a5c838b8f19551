from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import OrgScopedViewMixin
from core.filters import query_params
from core.idempotency import idempotent
from notifications import selectors, services
from notifications.filters import NotificationParams
from notifications.models import Channel, Kind
from notifications.serializers import NotificationSerializer, PreferencesSerializer, ReadAllOutputSerializer

PREFERENCES_EXAMPLE = OpenApiExample(
    "preferences", value={kind: {channel: True for channel in Channel.values} for kind in Kind.values[:2]}
)


@extend_schema_view(
    list=extend_schema(
        description="The caller's notifications, newest first, paginated.",
        parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="true: unread only; false: read only")],
    ),
    retrieve=extend_schema(description="One of the caller's notifications (anyone else's id: 404)."),
)
class NotificationViewSet(
    OrgScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's own notifications. Anyone else's id answers 404."""

    serializer_class = NotificationSerializer
    filter_backends: list = []

    def get_queryset(self):
        if self.organization is None:  # schema generation
            from notifications.models import Notification

            return Notification.objects.none()
        unread = query_params(NotificationParams, self.request)["unread"]
        return selectors.notifications_for(user=self.request.user, unread=unread)

    @extend_schema(request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def read(self, request, pk=None):
        """Mark one of the caller's notifications read (idempotent); answers the notification."""
        notification = services.mark_read(user=request.user, notification_id=pk)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses={200: ReadAllOutputSerializer})
    @action(detail=False, methods=["post"], url_path="read-all")
    @idempotent
    def read_all(self, request):
        """Mark all of the caller's notifications read."""
        marked = services.mark_all_read(user=request.user)
        return Response({"marked": marked, "unread_count": 0})

    @extend_schema(
        methods=["GET"], request=None, responses={200: PreferencesSerializer}, examples=[PREFERENCES_EXAMPLE]
    )
    @extend_schema(
        methods=["PUT"],
        request=PreferencesSerializer,
        responses={200: PreferencesSerializer},
        examples=[PREFERENCES_EXAMPLE],
    )
    @action(detail=False, methods=["get", "put"], pagination_class=None)
    def preferences(self, request):
        """Per kind and channel (in_app, email); no stored choice = on. PUT any subset; others stay."""
        if request.method == "PUT":
            data = PreferencesSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            return Response(services.update_preferences(user=request.user, preferences=data.validated_data))
        return Response(selectors.preferences_for(user=request.user))
