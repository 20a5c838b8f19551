from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from auditlogs.models import AuditLog


@extend_schema_field(
    {"type": "object", "nullable": True, "properties": {"id": {"type": "string"}, "email": {"type": "string"}}}
)
class ActorField(serializers.Field):
    """``{id, email}`` of the actor as recorded (the e-mail at the time of the action), or null for the system."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, log):
        if log.actor_id is None:
            return None
        return {"id": str(log.actor_id), "email": log.actor_repr}


class AuditLogSerializer(serializers.ModelSerializer):
    actor = ActorField()

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "sequence",
            "action",
            "actor",
            "actor_repr",
            "target_type",
            "target_id",
            "target_repr",
            "changes",
            "ip",
            "user_agent",
            "request_id",
            "created_at",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class VerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    first_bad = serializers.IntegerField(allow_null=True, help_text="Sequence where the chain breaks.")
    reason = serializers.CharField(allow_null=True)
    first_bad_id = serializers.IntegerField(allow_null=True)
