import django_filters
from django.core.exceptions import ValidationError

from auditlogs.models import AuditLog
from core.filters import FilterSet, InstantFilter
from core.ids import parse_uuid


def _validate_actor(value: str) -> None:
    if value != "system" and parse_uuid(value) is None:
        raise ValidationError("A user id, or 'system'.")


class AuditLogFilter(FilterSet):
    """``since`` is inclusive, ``until`` exclusive (ISO 8601; a bare date means midnight UTC)."""

    action = django_filters.CharFilter(field_name="action")
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    actor = django_filters.CharFilter(method="filter_actor", validators=[_validate_actor])
    target_type = django_filters.CharFilter(field_name="target_type")
    target_id = django_filters.CharFilter(field_name="target_id")
    since = InstantFilter(field_name="created_at", lookup_expr="gte")
    until = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditLog
        fields = ["action", "action_prefix", "actor", "target_type", "target_id", "since", "until"]

    def filter_actor(self, queryset, name, value):
        if value == "system":
            return queryset.filter(actor_id__isnull=True)
        return queryset.filter(actor_id=value)
