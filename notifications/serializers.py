from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import Notification


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
    in_app = serializers.BooleanField()
    email = serializers.BooleanField()


class PreferencesSerializer(serializers.Serializer):
    """Schema only: ``{kind: {"in_app": bool, "email": bool}}``; PUT accepts any subset.

    Validation (unknown kinds/channels, non-booleans) lives in ``services.validate_preferences``
    so the message names the offending ``kind.channel``.
    """

    def to_representation(self, instance):
        return instance

    def to_internal_value(self, data):
        from notifications.services import validate_preferences

        return validate_preferences(data)
