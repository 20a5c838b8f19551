"""The product's URLs plus ``bench/ceiling/``: a bare ``JsonResponse`` view, the ceiling of the
framework path (same server, same middleware; no authentication, throttle or database)."""

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as product_urlpatterns


def ceiling(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/ceiling/", ceiling), *product_urlpatterns]
