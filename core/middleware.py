import re
import time
import uuid

from django.conf import settings

from core import context

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def _client_ip(request) -> str | None:
    # Only trust X-Forwarded-For when the operator says a proxy sets it.
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


class RequestIdMiddleware:
    """Accepts a well-formed ``X-Request-ID`` or makes one; it is echoed back and put in every log line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = context.set_current(
            context.RequestContext(
                request_id=request_id,
                ip=_client_ip(request),
                user_agent=request.headers.get("User-Agent", "")[:512],
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status (core/metrics.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from core import metrics

        started = time.perf_counter()
        response = self.get_response(request)
        route = metrics.route_template(request)
        method = request.method if request.method in _METHODS else "other"  # bounded label values
        metrics.HTTP_LATENCY.labels(route=route, method=method).observe(time.perf_counter() - started)
        metrics.HTTP_REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        return response


class RequestLimitsMiddleware:
    """Over-long URLs and headers answered by the app, in the envelope (414, 431).

    gunicorn's own limits (``config/gunicorn.conf.py``) are set above these, so a request between
    the two reaches this middleware instead of getting the server's HTML page; only what exceeds
    the server's hard maximum (a request line over 8,190 bytes) is refused before the app, and a
    proxy in front refuses that first (``deploy/nginx.conf``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from core.exceptions import json_error

        url_chars = len(request.path) + len(request.META.get("QUERY_STRING", ""))
        if url_chars > settings.REQUEST_MAX_URL_CHARS:
            return json_error(
                414, "uri_too_long", f"The URL is longer than {settings.REQUEST_MAX_URL_CHARS} characters."
            )
        headers = [(k, v) for k, v in request.META.items() if k.startswith("HTTP_")]
        too_big = [k for k, v in headers if len(k) + len(str(v)) > settings.REQUEST_MAX_HEADER_BYTES]
        if len(headers) > settings.REQUEST_MAX_HEADERS or too_big:
            return json_error(
                431,
                "headers_too_large",
                f"At most {settings.REQUEST_MAX_HEADERS} headers of at most "
                f"{settings.REQUEST_MAX_HEADER_BYTES} bytes each.",
            )
        return self.get_response(request)
