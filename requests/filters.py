"""Query parameters of ``GET requests/``."""

import django_filters
from django.db.models import Q

from core.filters import ChoicesInFilter, FilterSet, InstantFilter, StrictBooleanFilter
from core.ids import parse_uuid
from requests.models import Request, RequestStatus


class RequestFilter(FilterSet):
    status = ChoicesInFilter(
        field_name="status", lookup_expr="in", choices=RequestStatus.choices, help_text="Comma-separated statuses."
    )
    workflow = django_filters.CharFilter(method="filter_workflow", max_length=64, help_text="A workflow key or id.")
    mine = StrictBooleanFilter(method="filter_mine", help_text="true: only requests the caller made.")
    created_after = InstantFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601 date or date-time (naive = UTC), inclusive."
    )
    created_before = InstantFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601 date or date-time (naive = UTC), exclusive."
    )
    search = django_filters.CharFilter(method="filter_search", max_length=200, help_text="In title or reference.")
    requester = django_filters.UUIDFilter(field_name="requester_id", help_text="The requester's user id.")
    submitted_after = InstantFilter(field_name="submitted_at", lookup_expr="gte", help_text="Inclusive.")
    submitted_before = InstantFilter(field_name="submitted_at", lookup_expr="lt", help_text="Exclusive.")
    decided_after = InstantFilter(field_name="completed_at", lookup_expr="gte", help_text="Inclusive.")
    decided_before = InstantFilter(field_name="completed_at", lookup_expr="lt", help_text="Exclusive.")
    overdue = StrictBooleanFilter(
        field_name="overdue", help_text="true: a pending task of the current round is past due."
    )

    class Meta:
        model = Request
        fields = [
            "status",
            "workflow",
            "mine",
            "requester",
            "created_after",
            "created_before",
            "submitted_after",
            "submitted_before",
            "decided_after",
            "decided_before",
            "search",
            "overdue",
        ]

    def filter_workflow(self, queryset, name, value):
        pk = parse_uuid(value)
        return queryset.filter(definition_id=pk) if pk else queryset.filter(definition__key=value)

    def filter_mine(self, queryset, name, value):
        return queryset.filter(requester=self.request.user) if value else queryset

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(title__icontains=value) | Q(reference__icontains=value))


class ExportParams(FilterSet):
    """``GET requests/export/?format=``: the file format (the list's filters apply as well)."""

    format = django_filters.ChoiceFilter(
        choices=[("csv", "CSV"), ("xlsx", "XLSX")], method="keep", required=True, help_text="csv or xlsx."
    )

    class Meta:
        model = Request
        fields = ["format"]

    def keep(self, queryset, name, value):
        return queryset
