from django.urls import path

from sso import views

urlpatterns = [
    path("auth/oidc/<slug:org_slug>/login/", views.OIDCLoginView.as_view(), name="auth-oidc-login"),
    path("auth/oidc/callback/", views.OIDCCallbackView.as_view(), name="auth-oidc-callback"),
]
