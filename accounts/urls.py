from django.urls import path

from accounts import views
from core.routers import ApiRouter

router = ApiRouter()
router.register("users", views.UserViewSet, basename="user")
router.register("roles", views.RoleViewSet, basename="role")

urlpatterns = [
    path("auth/login/", views.LoginView.as_view(), name="auth-login"),
    path("auth/login/2fa/", views.LoginSecondFactorView.as_view(), name="auth-login-2fa"),
    path("auth/2fa/totp/", views.TOTPView.as_view(), name="auth-2fa-totp"),
    path("auth/2fa/totp/confirm/", views.TOTPConfirmView.as_view(), name="auth-2fa-totp-confirm"),
    path("auth/refresh/", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/logout/all/", views.LogoutAllView.as_view(), name="auth-logout-all"),
    path("auth/sessions/", views.SessionListView.as_view(), name="auth-sessions"),
    path("auth/sessions/<uuid:pk>/", views.SessionEndView.as_view(), name="auth-session"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("auth/password/change/", views.PasswordChangeView.as_view(), name="auth-password-change"),
    path("auth/password/reset/", views.PasswordResetRequestView.as_view(), name="auth-password-reset"),
    path(
        "auth/password/reset/confirm/",
        views.PasswordResetConfirmView.as_view(),
        name="auth-password-reset-confirm",
    ),
    *router.urls,
]
