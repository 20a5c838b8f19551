from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import Kind, Notification


class NotificationSerializer(serializers.ModelSerializer):
    unread = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "request", "data", "read_at", "unread", "created_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_unread(self, obj) -> bool:
        return obj.read_at is None


class ReadAllOutputSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
    unread_count = serializers.IntegerField()


class ChannelSwitchesSerializer(serializers.Serializer):
    in_app = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)


class _PreferencesBase(serializers.Serializer):
    """``{kind: {"in_app": bool, "email": bool}}``; GET answers every kind, PUT accepts any subset.

    The declared fields describe the shape for the schema; validation (unknown kinds or channels,
    anything but true/false) is ``services.validate_preferences``, which names the ``kind.channel``.
    """

    def to_representation(self, instance):
        return instance

    def to_internal_value(self, data):
        from notifications.services import validate_preferences

        return validate_preferences(data)


PreferencesSerializer = type(
    "PreferencesSerializer",
    (_PreferencesBase,),
    {kind: ChannelSwitchesSerializer(required=False, label=label) for kind, label in Kind.choices},
)
