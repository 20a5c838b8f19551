from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.catalog import WEBHOOKS_MANAGE
from core.api import OrgScopedViewMixin
from core.idempotency import idempotent
from webhooks import selectors, services
from webhooks.serializers import (
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
)


class WebhookEndpointViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    """The organization's webhook endpoints (``webhooks.manage`` to read or change them)."""

    serializer_class = WebhookEndpointSerializer
    required_permissions = {"read": WEBHOOKS_MANAGE, "write": WEBHOOKS_MANAGE}
    filterset_fields = ["is_active"]
    ordering = ["created_at"]

    def get_queryset(self):
        return selectors.endpoints_for(organization=self.organization)

    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = WebhookEndpointSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(actor=request.user, organization=self.organization, **data.validated_data)
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.endpoint_update(
            actor=self.request.user, endpoint=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.endpoint_delete(actor=self.request.user, endpoint=instance)

    @extend_schema(request=None, responses={200: WebhookEndpointCreatedSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret (shown once); the old one keeps signing for the grace period."""
        endpoint = services.rotate_secret(actor=request.user, endpoint=self.get_object())
        return Response(WebhookEndpointCreatedSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a ``webhook.test`` event now."""
        delivery = services.send_test_event(actor=request.user, endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's delivery log, newest first, each with its attempts."""
        queryset = selectors.deliveries_for(organization=self.organization, endpoint=self.get_object())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryViewSet(OrgScopedViewMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = WebhookDeliverySerializer
    required_permissions = {"read": WEBHOOKS_MANAGE, "write": WEBHOOKS_MANAGE}

    def get_queryset(self):
        return selectors.deliveries_for(organization=self.organization)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        """Send the event again (same ``webhook-id``)."""
        delivery = services.redeliver(actor=request.user, delivery=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
