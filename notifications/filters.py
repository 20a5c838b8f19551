"""Query parameters of ``GET notifications/``."""

from core.filters import FilterSet, StrictBooleanFilter
from notifications.models import Notification


class NotificationParams(FilterSet):
    unread = StrictBooleanFilter(method="keep", help_text="true: unread only; false: read only.")

    class Meta:
        model = Notification
        fields = ["unread"]

    def keep(self, queryset, name, value):
        return queryset  # the value picks the selector's query (notifications.selectors.notifications_for)
