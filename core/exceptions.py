"""One error family for the whole API and one handler that renders the error envelope (docs/api.md).

Services raise ``ApplicationError`` subclasses; DRF, Django and database errors are
translated here so every 4xx/5xx body is ``{"error": {"code", "message", "details"}}``.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    status_code = 400
    code = "bad_request"
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, details: dict | None = None, code: str | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        if code:
            self.code = code
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "validation_error"
    default_message = "Invalid input."


class NotAuthenticated(ApplicationError):
    status_code = 401
    code = "not_authenticated"
    default_message = "Authentication credentials were not provided or are invalid."


class Forbidden(ApplicationError):
    status_code = 403
    code = "permission_denied"
    default_message = "You do not have permission to perform this action."


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state of the resource."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_message = "This action is not allowed in the current state."


class RateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests. Try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 60, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServiceUnavailable(ApplicationError):
    status_code = 503
    code = "service_unavailable"
    default_message = "A required service is unavailable. Try again shortly."


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _drf_details(exc: drf.APIException) -> tuple[str, dict]:
    """Flatten DRF's detail into (message, field->messages)."""
    detail = exc.detail
    if isinstance(exc, drf.ValidationError):
        if isinstance(detail, dict):
            details = {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
            return "Invalid input.", details
        if isinstance(detail, list):
            return "Invalid input.", {"non_field_errors": [str(m) for m in detail]}
        return str(detail), {}
    if isinstance(detail, dict):
        return str(detail.get("detail", exc.default_detail)), {}
    if isinstance(detail, list):
        return "; ".join(str(d) for d in detail), {}
    return str(detail), {}


_DRF_CODES = {
    drf.ValidationError: "validation_error",
    drf.ParseError: "parse_error",
    drf.AuthenticationFailed: "authentication_failed",
    drf.NotAuthenticated: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}


def api_exception_handler(exc, context):
    """DRF ``EXCEPTION_HANDLER``: every error leaves as the envelope."""
    headers = {}
    if isinstance(exc, ApplicationError):
        if getattr(exc, "retry_after", None):  # RateLimited, accounts' AccountLocked
            headers["Retry-After"] = str(exc.retry_after)
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code, headers=headers)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("permission_denied", Forbidden.default_message), status=403)
    if isinstance(exc, Ratelimited):
        return Response(
            error_body("rate_limited", RateLimited.default_message), status=429, headers={"Retry-After": "60"}
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", "The request body is too large."), status=413)
    if isinstance(exc, SuspiciousOperation):
        # Malformed or abusive input Django refused (too many fields/files, bad multipart...).
        logger.warning("suspicious request refused: %s", type(exc).__name__)
        return Response(error_body("bad_request", "Bad request."), status=400)
    if isinstance(exc, DjangoValidationError):
        details = as_serializer_error(exc)
        return Response(
            error_body("validation_error", "Invalid input.", {k: [str(m) for m in v] for k, v in details.items()}),
            status=400,
        )
    if isinstance(exc, drf.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), exc.default_code)
        message, details = _drf_details(exc)
        if isinstance(exc, drf.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)
    if isinstance(exc, DataError):
        # The database refused a value the API let through (out-of-range date or offset, number
        # too large...): the client's input, so a 400, never a 500.
        logger.warning("database refused a value: %s", exc)
        return Response(
            error_body(
                "invalid_value",
                "A value is out of range or malformed.",
                # The database's one-line message (never the SQL that follows it).
                {"non_field_errors": [(str(exc).splitlines() or [""])[0][:200]]},
            ),
            status=400,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.exception("database unavailable")
        return Response(error_body("service_unavailable", ServiceUnavailable.default_message), status=503)
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
        return Response(error_body("server_error", "Internal server error."), status=500)
    logger.exception("unhandled API error", exc_info=exc)
    return Response(error_body("server_error", "Internal server error."), status=500)


def json_error(status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)
