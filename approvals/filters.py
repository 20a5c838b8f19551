"""Query parameters of ``GET tasks/`` and ``GET delegations/``."""

import django_filters

from approvals.models import ApprovalTask, Delegation, TaskStatus
from approvals.sla import overdue_task_q
from core.filters import ChoicesInFilter, FilterSet, StrictBooleanFilter

ALL = "all"


class TaskFilter(FilterSet):
    """``status`` defaults to ``pending``; ``all`` lists every status."""

    status = ChoicesInFilter(
        method="filter_status",
        choices=[*TaskStatus.choices, (ALL, "All")],
        help_text="Comma-separated: pending (default), approved, rejected, skipped, cancelled, or all.",
    )
    request = django_filters.UUIDFilter(field_name="request_id", help_text="A request id.")
    workflow = django_filters.CharFilter(field_name="request__definition__key", max_length=64, help_text="Key.")
    overdue = StrictBooleanFilter(method="filter_overdue", help_text="true: pending past due_at; false: the others.")

    class Meta:
        model = ApprovalTask
        fields = ["status", "request", "workflow", "overdue"]

    def filter_queryset(self, queryset):
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status=TaskStatus.PENDING)
        return super().filter_queryset(queryset)

    def filter_status(self, queryset, name, value):
        return queryset if ALL in value else queryset.filter(status__in=value)

    def filter_overdue(self, queryset, name, value):
        return queryset.filter(overdue_task_q()) if value else queryset.exclude(overdue_task_q())


class DelegationParams(FilterSet):
    """Which delegations: made by the caller (default), made to them, or in force either way."""

    direction = django_filters.ChoiceFilter(
        choices=[("given", "Given"), ("received", "Received"), ("active", "Active")], method="keep"
    )

    class Meta:
        model = Delegation
        fields = ["direction"]

    def keep(self, queryset, name, value):
        return queryset  # the value picks the selector's query (approvals.selectors.delegations_for)
