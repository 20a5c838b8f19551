"""A user named by id or by e-mail in request bodies (reassign, delegations)."""

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import selectors
from core.ids import parse_uuid


@extend_schema_field({"type": "string", "description": "A user's id (UUID) or e-mail address."})
class UserReferenceField(serializers.Field):
    """Accepts a user's UUID or e-mail; gives the UUID, which the service then checks (same org, active).

    An e-mail is looked up in the caller's organization only, so another organization's address
    is "Unknown user." exactly like an unknown one.
    """

    default_error_messages = {
        "invalid": "Enter a user id (UUID) or an e-mail address.",
        "unknown": "Unknown user.",
    }

    def to_internal_value(self, data) -> uuid.UUID:
        if not isinstance(data, str) or len(data) > 254:
            self.fail("invalid")
        value = data.strip()
        pk = parse_uuid(value)
        if pk is not None:
            return pk
        try:
            validate_email(value)
        except DjangoValidationError:
            self.fail("invalid")
        request = self.context.get("request")
        organization = getattr(getattr(request, "user", None), "organization", None)
        pk = selectors.user_id_by_email(organization=organization, email=value) if organization else None
        if pk is None:
            self.fail("unknown")
        return pk

    def to_representation(self, value):
        return str(value)
