import time

from django.conf import settings
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django_ratelimit.core import is_ratelimited
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import login_flow, mfa, password_reset, selectors, services, sessions
from accounts.catalog import ROLES_MANAGE, USERS_MANAGE
from accounts.filters import UserFilter
from accounts.models import RoleMembership, User
from accounts.serializers import (
    CodeSerializer,
    LoginAnswerSerializer,
    LoginInputSerializer,
    LoginOutputSerializer,
    LogoutAllOutputSerializer,
    MeSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetRequestSerializer,
    RecoveryCodesSerializer,
    RefreshInputSerializer,
    RoleMemberInputSerializer,
    RoleMemberSerializer,
    RoleSerializer,
    SecondFactorSerializer,
    SessionSerializer,
    TokenPairSerializer,
    TOTPDisableSerializer,
    TOTPEnrolmentSerializer,
    UserCreateSerializer,
    UserSerializer,
    UserUpdateSerializer,
    me_payload,
)
from accounts.tokens import SESSION_CLAIM
from core.api import OrgScopedViewMixin
from core.exceptions import RateLimited


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=LoginInputSerializer, responses={200: LoginAnswerSerializer})
    def post(self, request):
        data = LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.check_login_rate(request=request._request, email=data.validated_data["email"])
        user, answer = login_flow.login_start(
            email=data.validated_data["email"], password=data.validated_data["password"]
        )
        if "access" in answer:
            answer = {**answer, "user": MeSerializer(user).data}
        return Response(answer)


class LoginSecondFactorView(APIView):
    """The login's second step: the mfa_token of the first and a TOTP or recovery code."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=SecondFactorSerializer, responses={200: LoginOutputSerializer})
    def post(self, request):
        data = SecondFactorSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = mfa.user_for_mfa_token(data.validated_data["mfa_token"])
        password_reset.check_rate(
            request=request._request,
            group="mfa",
            ip_rate=settings.MFA_RATE_PER_IP,
            account=str(user.pk),
            account_rate=settings.MFA_RATE_PER_ACCOUNT,
        )
        user, tokens = login_flow.login_finish(**data.validated_data)
        return Response({**tokens, "user": MeSerializer(user).data})


def _check_mfa_rate(request) -> None:
    password_reset.check_rate(
        request=request._request,
        group="mfa-manage",
        ip_rate=settings.MFA_RATE_PER_IP,
        account=str(request.user.pk),
        account_rate=settings.MFA_RATE_PER_ACCOUNT,
    )


class TOTPView(APIView):
    """POST starts an enrolment (a new secret); DELETE turns 2FA off (password and a code)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={201: TOTPEnrolmentSerializer})
    def post(self, request):
        return Response(mfa.totp_begin(user=request.user), status=status.HTTP_201_CREATED)

    @extend_schema(request=TOTPDisableSerializer, responses={204: None})
    def delete(self, request):
        data = TOTPDisableSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _check_mfa_rate(request)
        mfa.totp_disable(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TOTPConfirmView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=CodeSerializer, responses={200: RecoveryCodesSerializer})
    def post(self, request):
        data = CodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _check_mfa_rate(request)
        return Response({"recovery_codes": mfa.totp_confirm(user=request.user, code=data.validated_data["code"])})


class RefreshView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=RefreshInputSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        if is_ratelimited(
            request._request, group="refresh-ip", key="ip", rate=settings.REFRESH_RATE_PER_IP, increment=True
        ):
            raise RateLimited(retry_after=services.rate_seconds(settings.REFRESH_RATE_PER_IP))
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.refresh_tokens(refresh=data.validated_data["refresh"]))


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=RefreshInputSerializer, responses={204: None})
    def post(self, request):
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.logout(user=request.user, refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """End every session of the caller (this one included)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: LogoutAllOutputSerializer})
    def post(self, request):
        return Response({"ended": sessions.logout_all(user=request.user)})


def _current_session(request) -> str | None:
    token = getattr(request, "auth", None)
    return str(token.get(SESSION_CLAIM)) if token is not None and token.get(SESSION_CLAIM) else None


class SessionListView(OrgScopedViewMixin, generics.ListAPIView):
    """The caller's active sessions (one per login on a device), the current one marked."""

    serializer_class = SessionSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.active_sessions(organization=self.organization, user=self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "current_session": _current_session(self.request)}


class SessionEndView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk):
        sessions.session_end(user=request.user, session_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        return Response(me_payload(request.user))


class PasswordChangeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=PasswordChangeSerializer, responses={204: None})
    def post(self, request):
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_change(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetRequestView(APIView):
    """Always 202 after the same minimum time: the answer says nothing about the account."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=PasswordResetRequestSerializer, responses={202: None})
    def post(self, request):
        started = time.monotonic()
        data = PasswordResetRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].strip().lower()
        password_reset.check_rate(
            request=request._request,
            group="password-reset",
            ip_rate=settings.PASSWORD_RESET_RATE_PER_IP,
            account=email,
            account_rate=settings.PASSWORD_RESET_RATE_PER_ACCOUNT,
        )
        password_reset.password_reset_request(email=email)
        # Pad to the floor so a known and an unknown address take the same time (the e-mail
        # itself leaves after commit, from a worker).
        time.sleep(max(settings.PASSWORD_RESET_MIN_MS / 1000 - (time.monotonic() - started), 0))
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(request=PasswordResetConfirmSerializer, responses={204: None})
    def post(self, request):
        data = PasswordResetConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        password_reset.check_rate(
            request=request._request,
            group="password-reset-confirm",
            ip_rate=settings.PASSWORD_RESET_CONFIRM_RATE_PER_IP,
            account=data.validated_data["uid"],
            account_rate=settings.PASSWORD_RESET_CONFIRM_RATE_PER_ACCOUNT,
        )
        password_reset.password_reset_confirm(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    """The organization's people. Anyone in it may read (to pick delegates); ``users.manage`` writes.

    DELETE deactivates (the soft delete of a user); ``reactivate`` undoes it.
    """

    required_permissions = {"write": USERS_MANAGE}
    filterset_class = UserFilter
    ordering_fields = ["email", "last_name", "date_joined"]
    ordering = ["email"]

    def get_queryset(self):
        return selectors.users_for(organization=self.organization).prefetch_related(
            Prefetch(
                "role_memberships", queryset=RoleMembership.objects.select_related("role"), to_attr="prefetched_roles"
            )
        )

    def get_serializer_class(self):
        if self.action == "create":
            return UserCreateSerializer
        if self.action in {"update", "partial_update"}:
            return UserUpdateSerializer
        return UserSerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.user_create(
            actor=self.request.user, organization=self.organization, roles=data.pop("role_slugs", None), **data
        )

    def perform_update(self, serializer):
        serializer.instance = services.user_update(
            actor=self.request.user, user=serializer.instance, **serializer.validated_data
        )

    def destroy(self, request, *args, **kwargs):
        services.user_deactivate(actor=request.user, user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        user = services.user_reactivate(actor=request.user, user=self.get_object())
        return Response(UserSerializer(user, context=self.get_serializer_context()).data)


class RoleViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    serializer_class = RoleSerializer
    required_permissions = {"write": ROLES_MANAGE, "members": ROLES_MANAGE, "remove_member": ROLES_MANAGE}
    ordering = ["slug"]

    def get_queryset(self):
        return selectors.roles_for(organization=self.organization)

    def perform_create(self, serializer):
        serializer.instance = services.role_create(
            actor=self.request.user, organization=self.organization, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.role_update(
            actor=self.request.user, role=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.role_delete(actor=self.request.user, role=instance)

    @extend_schema(methods=["GET"], responses={200: RoleMemberSerializer(many=True)})
    @extend_schema(methods=["POST"], request=RoleMemberInputSerializer, responses={201: RoleMemberSerializer})
    @action(detail=True, methods=["get", "post"])
    def members(self, request, pk=None):
        role = self.get_object()
        if request.method == "POST":
            data = RoleMemberInputSerializer(data=request.data, context=self.get_serializer_context())
            data.is_valid(raise_exception=True)
            membership = services.role_member_add(actor=request.user, role=role, user=data.validated_data["user"])
            return Response(RoleMemberSerializer(membership).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(selectors.role_members(role=role))
        return self.get_paginated_response(RoleMemberSerializer(page, many=True).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path="members/<uuid:user_id>")
    def remove_member(self, request, pk=None, user_id=None):
        role = self.get_object()
        user = get_object_or_404(User.objects.for_organization(self.organization), pk=user_id)
        services.role_member_remove(actor=request.user, role=role, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)
