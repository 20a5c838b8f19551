from django.db.models import Prefetch

from core.exceptions import NotFound
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoints_for(*, organization):
    return WebhookEndpoint.objects.for_organization(organization).order_by("created_at")


def deliveries_for(*, organization, endpoint=None):
    qs = WebhookDelivery.objects.for_organization(organization).prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
    )
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    return qs.order_by("-created_at")


def delivery_get(*, organization, delivery_id) -> WebhookDelivery:
    try:
        return WebhookDelivery.objects.for_organization(organization).select_related("endpoint").get(pk=delivery_id)
    except WebhookDelivery.DoesNotExist:
        raise NotFound() from None
