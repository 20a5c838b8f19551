from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.catalog import WORKFLOWS_MANAGE
from approvals import selectors, services
from approvals.filters import DelegationParams, TaskFilter
from approvals.lifecycle import services as lifecycle
from approvals.serializers import (
    AddAssigneeSerializer,
    BulkApproveResultSerializer,
    BulkApproveSerializer,
    DecisionSerializer,
    DelegationSerializer,
    DelegationWriteSerializer,
    MigrateResponseSerializer,
    MigrateSerializer,
    ReassignSerializer,
    RetractSerializer,
    TaskDetailSerializer,
    TaskListSerializer,
    task_detail_payload,
    task_list_items,
)
from core.api import OrgScopedViewMixin
from core.compiled_query import CompiledQuery
from core.exceptions import ValidationFailed
from core.filters import FilterBackend, query_params
from core.idempotency import idempotent
from workflows.selectors import definition_get


def _unfiltered_inbox(*, user_id, organization_id, **delegations):
    """The inbox without query parameters (TaskFilter's defaults: pending), as the list reads it.

    ``delegations``: ``from_<i>`` (the delegator) and, for one scoped to a workflow, ``workflow_<i>``.
    """
    count = sum(1 for name in delegations if name.startswith("from_"))
    acting_for = [
        selectors.InboxDelegation(delegations[f"from_{i}"], delegations.get(f"workflow_{i}")) for i in range(count)
    ]
    tasks = selectors.inbox_list(user_id=user_id, organization_id=organization_id, delegations=acting_for)
    tasks = TaskFilter(data={}, queryset=tasks).qs
    return selectors.inbox_list_rows(tasks, user_id=user_id, delegated=bool(acting_for))


# What a client polls: compiled once per process and shape of the caller's delegations
# (core/compiled_query.py), its compile having cost as much Python time as the database took.
_UNFILTERED_INBOX = CompiledQuery(_unfiltered_inbox)


def _unfiltered_values(user, delegations) -> dict:
    values = {"user_id": user.pk, "organization_id": user.organization_id}
    for i, d in enumerate(delegations):
        values[f"from_{i}"] = d.from_user_id
        if d.workflow_id is not None:
            values[f"workflow_{i}"] = d.workflow_id
    return values


class TaskViewSet(OrgScopedViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's inbox: own tasks and those of people delegating to them."""

    serializer_class = TaskListSerializer
    filter_backends = [FilterBackend]
    filterset_class = TaskFilter

    def get_queryset(self):
        if self.organization is None:
            from approvals.models import ApprovalTask

            return ApprovalTask.objects.none()
        return self._inbox(selectors.inbox_delegations(user=self.request.user))  # TaskFilter: status, default pending

    def _inbox(self, delegations, *, user_id=None, organization_id=None):
        user = self.request.user
        return selectors.inbox_list(
            user_id=user_id or user.pk,
            organization_id=organization_id or user.organization_id,
            delegations=delegations,
        )

    def list(self, request, *args, **kwargs):
        """One statement per page (rows and total) after the delegations: see ``selectors.inbox_list``."""
        user = request.user
        delegations = selectors.inbox_delegations(user=user)
        if set(request.query_params).isdisjoint(TaskFilter.base_filters):
            values = _unfiltered_values(user, delegations)

            def rows(offset, limit):
                return _UNFILTERED_INBOX.fetch_page(offset, limit, **values)
        else:
            queryset = selectors.inbox_list_rows(
                self.filter_queryset(self._inbox(delegations)), user_id=user.pk, delegated=bool(delegations)
            )

            def rows(offset, limit):
                return list(queryset[offset : offset + limit])

        now = timezone.now()

        def fetch(offset, limit):
            found = rows(offset, limit)
            return task_list_items(found, now=now), found[0]["total"] if found else None

        def count_all():
            return self.filter_queryset(self._inbox(delegations)).count()

        return self.get_paginated_response(self.paginator.paginate_rows(fetch, count_all, request, view=self))

    def _answer(self, task):
        """``task`` as the services return it (or the detail reads it), with its step, request and
        assignments: ``TaskDetailSerializer``'s answer, built by ``task_detail_payload`` (the schema stays
        the serializer's)."""
        return Response(task_detail_payload(task, user=self.request.user))

    @extend_schema(responses={200: TaskDetailSerializer})
    def retrieve(self, request, pk=None):
        task = selectors.task_get(user=request.user, task_id=pk)
        return self._answer(selectors.task_detail_queryset(organization_id=task.organization_id).get(pk=task.pk))

    def _decide(self, request, pk, decision):
        s = DecisionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        task = lifecycle.task_decide(
            actor=request.user, task_id=pk, decision=decision, comment=s.validated_data["comment"]
        )
        return self._answer(task)

    @extend_schema(request=DecisionSerializer, responses={200: TaskDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        return self._decide(request, pk, "approve")

    @extend_schema(request=DecisionSerializer, responses={200: TaskDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request, pk=None):
        return self._decide(request, pk, "reject")

    @extend_schema(request=DecisionSerializer, responses={200: TaskDetailSerializer})
    @action(detail=True, methods=["post"], url_path="request-changes")
    @idempotent
    def request_changes(self, request, pk=None):
        return self._decide(request, pk, "request_changes")

    @extend_schema(request=ReassignSerializer, responses={200: TaskDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def reassign(self, request, pk=None):
        s = ReassignSerializer(data=request.data, context={"request": request})
        s.is_valid(raise_exception=True)
        task = lifecycle.task_reassign(
            actor=request.user,
            task_id=pk,
            to_user=s.validated_data["user"],
            from_user=s.validated_data.get("from_user"),
            reason=s.validated_data["reason"] or "reassigned",
        )
        return self._answer(task)

    @extend_schema(request=RetractSerializer, responses={200: TaskDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def retract(self, request, pk=None):
        """Take your decision back while the step has not settled (409 ``decision_final`` after)."""
        s = RetractSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return self._answer(lifecycle.task_retract(actor=request.user, task_id=pk, comment=s.validated_data["comment"]))

    @extend_schema(request=AddAssigneeSerializer, responses={200: TaskDetailSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def assignees(self, request, pk=None):
        """Add an approver to a pending task (an assignee, a workflow admin or ``tasks.manage``)."""
        s = AddAssigneeSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        lifecycle.task_add_assignee(
            actor=request.user, task_id=pk, user=s.validated_data["user"], comment=s.validated_data["comment"]
        )
        return self._answer(selectors.task_detail_queryset(organization_id=request.user.organization_id).get(pk=pk))

    @extend_schema(request=BulkApproveSerializer, responses={200: BulkApproveResultSerializer})
    @action(detail=False, methods=["post"], url_path="bulk-approve")
    @idempotent
    def bulk_approve(self, request):
        s = BulkApproveSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        results = lifecycle.bulk_approve(
            actor=request.user, task_ids=s.validated_data["tasks"], comment=s.validated_data["comment"]
        )
        return Response(
            {
                "results": results,
                "approved": sum(1 for r in results if r["ok"]),
                "failed": sum(1 for r in results if not r["ok"]),
            }
        )


class DelegationViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    """The caller's delegations (``?direction=received`` for the ones made to them)."""

    serializer_class = DelegationSerializer
    filter_backends = []

    def get_queryset(self):
        if self.organization is None:
            from approvals.models import Delegation

            return Delegation.objects.none()
        direction = query_params(DelegationParams, self.request)["direction"] or "given"
        return selectors.delegations_for(user=self.request.user, direction=direction)

    def get_object(self):
        obj = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if obj is None:
            from core.exceptions import NotFound

            raise NotFound("Delegation not found.")
        return obj

    def _fields(self, partial: bool) -> dict:
        s = DelegationWriteSerializer(data=self.request.data, partial=partial, context={"request": self.request})
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        if "workflow" in data:
            ref = data["workflow"]
            if ref:
                try:
                    data["workflow"] = definition_get(organization=self.organization, workflow=ref)
                except Exception:  # noqa: BLE001 - NotFound
                    raise ValidationFailed(details={"workflow": ["Unknown workflow."]}) from None
            else:
                data["workflow"] = None
        return data

    def get_serializer_context(self):
        context = super().get_serializer_context()
        page = getattr(self, "_page", None)
        if page is not None:
            context["not_used_for"] = selectors.delegation_not_used_for(page)
        return context

    def paginate_queryset(self, queryset):
        self._page = super().paginate_queryset(queryset)
        return self._page

    def retrieve(self, request, *args, **kwargs):
        return Response(self._out(self.get_object()))

    def _out(self, delegation) -> dict:
        context = {"not_used_for": selectors.delegation_not_used_for([delegation])}
        return DelegationSerializer(delegation, context=context).data

    @extend_schema(request=DelegationWriteSerializer, responses={201: DelegationSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        delegation = services.delegation_create(actor=request.user, **self._fields(partial=False))
        return Response(self._out(delegation), status=201)

    @extend_schema(request=DelegationWriteSerializer, responses={200: DelegationSerializer})
    def update(self, request, *args, partial=False, **kwargs):
        fields = self._fields(partial=partial)
        delegation = services.delegation_update(actor=request.user, delegation_id=kwargs["pk"], **fields)
        return Response(self._out(delegation))

    @extend_schema(request=DelegationWriteSerializer, responses={200: DelegationSerializer})
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        services.delegation_delete(actor=request.user, delegation_id=kwargs["pk"])
        return Response(status=204)


class WorkflowMigrateView(OrgScopedViewMixin, APIView):
    """``POST workflows/{id}/migrate/``: move running requests to the published version (issue 16.4)."""

    required_permissions = {"write": WORKFLOWS_MANAGE}

    @extend_schema(request=MigrateSerializer, responses={200: MigrateResponseSerializer})
    @idempotent
    def post(self, request, pk=None):
        s = MigrateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        run = lifecycle.workflow_migrate(
            actor=request.user,
            workflow_id=pk,
            from_version=data["from_version"],
            to_version=data["to_version"],
            dry_run=data["dry_run"],
            request_ids=data.get("requests"),
            restart=data["restart"],
        )
        return Response({"dry_run": data["dry_run"], **run})
