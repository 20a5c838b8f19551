"""``auth/oidc/<org-slug>/login/`` and ``auth/oidc/callback/`` (docs/security.md, "Single sign-on")."""

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_ratelimit.core import is_ratelimited
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import LoginOutputSerializer, MeSerializer
from accounts.services import rate_seconds
from core.exceptions import NotAuthenticated, NotFound, RateLimited
from core.filters import query_params
from sso import selectors, services
from sso.filters import CallbackParams, LoginParams

STATE_COOKIE = "oidc_state"


def _check_rate(request) -> None:
    rate = settings.OIDC_RATE_PER_IP
    if is_ratelimited(request, group="oidc-ip", key="ip", rate=rate, increment=True):
        raise RateLimited(retry_after=rate_seconds(rate))


def callback_url(request) -> str:
    """Where the provider sends the browser back: ``OIDC_CALLBACK_URL`` or this server's own address."""
    return settings.OIDC_CALLBACK_URL or request.build_absolute_uri(reverse("auth-oidc-callback"))


class OIDCLoginView(APIView):
    """Start a single sign-on: redirect to the organization's identity provider."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        parameters=[OpenApiParameter("next", str, enum=["admin"])],
        responses={302: OpenApiResponse(description="To the identity provider.")},
    )
    def get(self, request, org_slug):
        _check_rate(request._request)
        purpose = "admin" if query_params(LoginParams, request)["next"] == "admin" else "api"
        provider = selectors.enabled_provider(org_slug=org_slug)
        if provider is None:
            raise NotFound("This organization has no single sign-on.")
        url, state = services.login_start(provider=provider, redirect_uri=callback_url(request), purpose=purpose)
        response = HttpResponseRedirect(url)
        # Lax: sent on the provider's top-level redirect back, not on cross-site subrequests.
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=settings.OIDC_ATTEMPT_SECONDS,
            path=reverse("auth-oidc-callback"),
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
        return response


class OIDCCallbackView(APIView):
    """The provider's redirect back: the same answer as a password login."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    filter_backends: list = []

    @extend_schema(
        parameters=[OpenApiParameter(name, str) for name in ("state", "code", "error")],
        responses={200: LoginOutputSerializer},
    )
    def get(self, request):
        _check_rate(request._request)
        params = query_params(CallbackParams, request)
        if params["error"] or not params["state"] or not params["code"]:
            raise NotAuthenticated(
                f"The identity provider did not sign you in: {params['error'] or 'no code'}.", code="oidc_refused"
            )
        user, tokens = services.login_finish(
            state=params["state"], code=params["code"], browser_state=request.COOKIES.get(STATE_COOKIE)
        )
        if tokens is None:  # a sign-in into the admin site: its session, then its index
            auth_login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponseRedirect(reverse("admin:index"))
        return Response({**tokens, "user": MeSerializer(user).data})
