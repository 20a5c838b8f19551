from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.catalog import ORG_MANAGE
from core.api import OrgScopedViewMixin
from organizations import selectors, services
from organizations.filters import DepartmentFilter
from organizations.serializers import DepartmentSerializer, HolidaySerializer, OrganizationSerializer


class CurrentOrganizationView(OrgScopedViewMixin, APIView):
    required_permissions = {"write": ORG_MANAGE}

    @extend_schema(responses={200: OrganizationSerializer})
    def get(self, request):
        return Response(OrganizationSerializer(self.organization).data)

    def _update(self, request, partial: bool):
        data = OrganizationSerializer(self.organization, data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        org = services.organization_update(actor=request.user, organization=self.organization, **data.validated_data)
        return Response(OrganizationSerializer(org).data)

    @extend_schema(request=OrganizationSerializer, responses={200: OrganizationSerializer})
    def put(self, request):
        return self._update(request, partial=False)

    @extend_schema(request=OrganizationSerializer, responses={200: OrganizationSerializer})
    def patch(self, request):
        return self._update(request, partial=True)


class DepartmentViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    serializer_class = DepartmentSerializer
    required_permissions = {"write": ORG_MANAGE}
    filterset_class = DepartmentFilter
    ordering = ["name"]

    def get_queryset(self):
        return selectors.departments_for(organization=self.organization)

    def perform_create(self, serializer):
        serializer.instance = services.department_create(
            actor=self.request.user, organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.department_update(
            actor=self.request.user, department=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.department_delete(actor=self.request.user, department=instance)


class HolidayViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    serializer_class = HolidaySerializer
    required_permissions = {"write": ORG_MANAGE}
    ordering = ["date"]

    def get_queryset(self):
        return selectors.holidays_for(organization=self.organization)

    def perform_create(self, serializer):
        serializer.instance = services.holiday_create(
            actor=self.request.user, organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.holiday_update(
            actor=self.request.user, holiday=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.holiday_delete(actor=self.request.user, holiday=instance)
