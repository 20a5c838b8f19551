from django.contrib.auth import get_user_model, login
from django.http import HttpResponseRedirect
from django.urls import include, path


def sign_in(request):
    """Stands for the provider's login page: signs in ``?email=`` (created on first use), then ``?next=``."""
    email = request.GET["email"]
    user, _ = get_user_model().objects.get_or_create(username=email.split("@")[0], defaults={"email": email})
    login(request, user)
    return HttpResponseRedirect(request.GET["next"])


urlpatterns = [
    path("sign-in/", sign_in),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
