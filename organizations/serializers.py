from rest_framework import serializers

from accounts.models import User
from core.api import OrgRelatedField
from organizations.models import Department, Holiday, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "timezone", "work_days", "work_start", "work_end", "created_at"]
        read_only_fields = ["id", "slug", "created_at"]


class DepartmentSerializer(serializers.ModelSerializer):
    parent = OrgRelatedField(
        scope=lambda org: Department.objects.for_organization(org), allow_null=True, required=False
    )
    head = OrgRelatedField(scope=lambda org: User.objects.for_organization(org), allow_null=True, required=False)

    class Meta:
        model = Department
        fields = ["id", "name", "parent", "head", "created_at"]
        read_only_fields = ["id", "created_at"]


class HolidaySerializer(serializers.ModelSerializer):
    class Meta:
        model = Holiday
        fields = ["id", "date", "name"]
        read_only_fields = ["id"]
