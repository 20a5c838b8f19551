import logging

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.exceptions import json_error

logger = logging.getLogger(__name__)


def health_live(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:
        logger.warning("readiness: database down", exc_info=True)
        return "down"


def _check_redis() -> str:
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        return "ok"
    except Exception:
        logger.warning("readiness: redis down", exc_info=True)
        return "down"


def health_ready(request):
    checks = {"database": _check_database()}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    if all(v == "ok" for v in checks.values()):
        return JsonResponse({"status": "ok", "checks": checks})
    return json_error(503, "service_unavailable", "A dependency is unavailable.", checks)


def metrics(request):
    """Prometheus text format: this process (or every process of the multiprocess directory) + database gauges."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from core.metrics import scrape_allowed, scrape_registry

    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if not scrape_allowed(
        request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", ""), forwarded=forwarded
    ):
        return json_error(403, "forbidden", "Metrics need the bearer token (METRICS_TOKEN) or a loopback client.")
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    if _is_api(request):
        return json_error(404, "not_found", "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return json_error(500, "server_error", "Internal server error.")
    from django.views.defaults import server_error

    return server_error(request)


def handler403(request, exception=None):
    if _is_api(request):
        return json_error(403, "permission_denied", "You do not have permission to perform this action.")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def handler400(request, exception=None):
    if _is_api(request):
        return json_error(400, "bad_request", "Bad request.")
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def ratelimited(request, exception=None):
    response = json_error(429, "rate_limited", "Too many requests. Try again later.")
    response["Retry-After"] = "60"
    return response


@csrf_exempt  # nothing is there to protect: an unknown /api/v1/ path is a 404 for every method
def api_not_found(request, *args, **kwargs):
    return json_error(404, "not_found", "Not found.")


def csrf_failure(request, reason=""):
    """``CSRF_FAILURE_VIEW``: the admin keeps Django's page; under /api/ the answer is the envelope."""
    if _is_api(request):
        return json_error(403, "csrf_failed", "CSRF verification failed.")
    from django.views.csrf import csrf_failure as default

    return default(request, reason=reason)
