"""Shapes of workflow definitions and versions. Content validation lives in ``workflows.validation``."""

from rest_framework import serializers

from workflows.models import EscalateTo, ResubmitPolicy, Step, VersionStatus, WorkflowDefinition, WorkflowVersion
from workflows.validation import STEP_FIELDS


class StepSerializer(serializers.ModelSerializer):
    # Unset is "" in the data; the documented enum says so too.
    escalate_to = serializers.ChoiceField(choices=[("", "Not set"), *EscalateTo.choices], read_only=True)

    class Meta:
        model = Step
        fields = ["id", *STEP_FIELDS]
        read_only_fields = fields


class VersionSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)
    published_by = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowVersion
        fields = [
            "id",
            "number",
            "status",
            "form_schema",
            "distinct_approvers",
            "published_at",
            "published_by",
            "created_at",
            "updated_at",
            "steps",
        ]
        read_only_fields = fields

    def get_published_by(self, obj) -> str | None:
        return obj.published_by.email if obj.published_by_id and obj.published_by else None


class VersionContentSerializer(serializers.Serializer):
    """Input of POST workflows/ and PUT workflows/{id}/draft/: passed raw to the validator (errors per step)."""

    form_schema = serializers.JSONField(required=False)
    distinct_approvers = serializers.JSONField(required=False)
    steps = serializers.JSONField(required=False)


class WorkflowSerializer(serializers.ModelSerializer):
    published_version = serializers.SerializerMethodField()
    draft_version = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowDefinition
        fields = [
            "id",
            "key",
            "name",
            "description",
            "category",
            "is_active",
            "reference_prefix",
            "resubmit_policy",
            "created_at",
            "updated_at",
            "published_version",
            "draft_version",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "published_version", "draft_version"]
        # Uniqueness of the key is checked by the service (per org, live rows only).
        validators: list = []
        extra_kwargs = {"key": {"validators": []}}

    def _version(self, obj, status):
        for version in getattr(obj, "current_versions", None) or []:
            if version.status == status:
                return version
        return None

    def get_published_version(self, obj) -> dict | None:
        version = self._version(obj, VersionStatus.PUBLISHED)
        return VersionSerializer(version).data if version else None

    def get_draft_version(self, obj) -> int | None:
        if not self.context.get("can_manage"):
            return None
        version = self._version(obj, VersionStatus.DRAFT)
        return version.number if version else None


class WorkflowCreateSerializer(VersionContentSerializer):
    key = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    category = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    is_active = serializers.BooleanField(required=False, default=True)
    reference_prefix = serializers.CharField(required=False, allow_blank=True, max_length=8, default="")
    resubmit_policy = serializers.ChoiceField(
        choices=ResubmitPolicy.choices, required=False, default=ResubmitPolicy.RESTART_IF_CHANGED
    )


class WorkflowUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    category = serializers.CharField(required=False, allow_blank=True, max_length=100)
    is_active = serializers.BooleanField(required=False)
    reference_prefix = serializers.CharField(required=False, allow_blank=True, max_length=8)
    resubmit_policy = serializers.ChoiceField(choices=ResubmitPolicy.choices, required=False)
