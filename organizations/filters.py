"""Query parameters of ``GET departments/``."""

import django_filters

from core.filters import FilterSet
from organizations.models import Department


class DepartmentFilter(FilterSet):
    # An id, not a choice among every organization's departments (which would tell ids apart).
    parent = django_filters.UUIDFilter(field_name="parent_id", help_text="The parent department's id.")

    class Meta:
        model = Department
        fields = ["parent"]
