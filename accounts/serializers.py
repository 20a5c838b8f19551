from django.contrib.auth.password_validation import validate_password  # noqa: F401 - documented in schema
from rest_framework import serializers

from accounts.catalog import CATALOG
from accounts.models import Role, User
from core.api import OrgRelatedField


class LoginInputSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, max_length=256)


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class OrganizationBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class DepartmentBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class MeSerializer(serializers.ModelSerializer):
    organization = OrganizationBriefSerializer(allow_null=True)
    department = DepartmentBriefSerializer(allow_null=True)
    roles = serializers.SerializerMethodField()
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "title",
            "organization",
            "department",
            "manager",
            "is_staff",
            "roles",
            "permissions",
        ]

    def get_roles(self, user) -> list[str]:
        return user.role_slugs

    def get_permissions(self, user) -> list[str]:
        return sorted(user.permission_codes)


def me_payload(user: User) -> dict:
    """``MeSerializer(user).data`` without building a serializer's fields on every request: about a
    third of a warm ``GET auth/me/``'s CPU went there (issue 14). The same keys and values
    (``accounts/tests/test_serializers.py`` compares them); ``MeSerializer`` stays the schema."""
    org = user.organization if user.organization_id else None
    dept = user.department if user.department_id else None
    return {
        "id": str(user.pk),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "title": user.title,
        "organization": {"id": str(org.pk), "slug": org.slug, "name": org.name} if org else None,
        "department": {"id": str(dept.pk), "name": dept.name} if dept else None,
        "manager": user.manager_id,
        "is_staff": user.is_staff,
        "roles": user.role_slugs,
        "permissions": sorted(user.permission_codes),
    }


class LoginOutputSerializer(TokenPairSerializer):
    user = MeSerializer()


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(trim_whitespace=False)
    new_password = serializers.CharField(trim_whitespace=False, max_length=256)


def _departments(org):
    # Department through the user's foreign key: accounts sits below organizations
    # (docs/architecture.md, "App layers") and does not import it.
    department = User._meta.get_field("department").related_model
    return department.objects.for_organization(org) if org else department.objects.none()


def _users(org):
    return User.objects.for_organization(org) if org else User.objects.none()


class UserSerializer(serializers.ModelSerializer):
    department = OrgRelatedField(scope=_departments, allow_null=True, required=False)
    manager = OrgRelatedField(scope=_users, allow_null=True, required=False)
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "title",
            "department",
            "manager",
            "is_active",
            "is_staff",
            "roles",
            "date_joined",
            "deactivated_at",
        ]
        read_only_fields = ["id", "is_active", "date_joined", "deactivated_at"]

    def get_roles(self, user) -> list[str]:
        prefetched = getattr(user, "prefetched_roles", None)
        if prefetched is not None:
            return sorted(m.role.slug for m in prefetched)
        return user.role_slugs


class UserCreateSerializer(UserSerializer):
    password = serializers.CharField(write_only=True, required=False, trim_whitespace=False, max_length=256)
    role_slugs = serializers.ListField(child=serializers.SlugField(), required=False, write_only=True)

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "password", "role_slugs"]


class UserUpdateSerializer(UserSerializer):
    class Meta(UserSerializer.Meta):
        read_only_fields = [*UserSerializer.Meta.read_only_fields, "email"]


class RoleSerializer(serializers.ModelSerializer):
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=sorted(CATALOG)), required=False)

    class Meta:
        model = Role
        fields = ["id", "slug", "name", "description", "permissions", "is_builtin", "created_at"]
        read_only_fields = ["id", "is_builtin", "created_at"]


class RoleMemberInputSerializer(serializers.Serializer):
    user = OrgRelatedField(scope=_users)


class RoleMemberSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="user.id")
    email = serializers.EmailField(source="user.email")
    added_at = serializers.DateTimeField(source="created_at")


class PasswordResetRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = serializers.CharField(trim_whitespace=False, max_length=256)


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField()
    ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    method = serializers.CharField()
    current = serializers.SerializerMethodField()

    def get_current(self, session) -> bool:
        return str(session.pk) == self.context.get("current_session")


class LogoutAllOutputSerializer(serializers.Serializer):
    ended = serializers.IntegerField()


class LoginAnswerSerializer(serializers.Serializer):
    """Either the token pair and the user, or (2FA on) the challenge of the second step."""

    access = serializers.CharField(required=False)
    refresh = serializers.CharField(required=False)
    user = MeSerializer(required=False)
    mfa_required = serializers.BooleanField(required=False)
    mfa_token = serializers.CharField(required=False)
    mfa_enrolment_required = serializers.BooleanField(
        required=False, help_text="The organization requires 2FA: these tokens serve auth/ endpoints only."
    )


class SecondFactorSerializer(serializers.Serializer):
    mfa_token = serializers.CharField(max_length=1000)
    code = serializers.CharField(max_length=32, help_text="The 6-digit code of the app, or a recovery code.")


class TOTPEnrolmentSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="Base32, for typing into the app.")
    otpauth_uri = serializers.CharField()
    qr_svg = serializers.CharField(help_text="The otpauth URI as a QR code (SVG markup).")


class CodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)


class RecoveryCodesSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(child=serializers.CharField(), help_text="Shown once: keep them safe.")


class TOTPDisableSerializer(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False, max_length=256)
    code = serializers.CharField(max_length=32)
