"""Query parameters of ``GET workflows/`` (``search`` and ``ordering`` are DRF's)."""

import django_filters

from core.filters import FilterSet, StrictBooleanFilter
from workflows.models import WorkflowDefinition


class WorkflowFilter(FilterSet):
    category = django_filters.CharFilter(field_name="category", max_length=100)
    is_active = StrictBooleanFilter(field_name="is_active")

    class Meta:
        model = WorkflowDefinition
        fields = ["category", "is_active"]
