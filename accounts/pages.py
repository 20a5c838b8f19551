"""The reset link's page: a person sets a new password in a browser, no API client needed.

Server-rendered, no script and no asset from anywhere (inline style only, enforced by its
Content-Security-Policy); the token never leaves in a Referer to another site. It calls the same service as
``POST auth/password/reset/confirm/``, behind the same rate limits.
"""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from accounts import password_reset
from core.exceptions import RateLimited, ValidationFailed

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
MAX_PASSWORD = 256


def _page(request, context: dict, status: int = 200):
    response = render(request, "accounts/password_reset.html", context, status=status)
    response["Content-Security-Policy"] = PAGE_CSP
    # same-origin, not no-referrer: under no-referrer a browser sends the form's POST with
    # ``Origin: null``, which the CSRF check refuses; same-origin still keeps the token out of
    # any Referer sent to another site.
    response["Referrer-Policy"] = "same-origin"
    response["X-Frame-Options"] = "DENY"
    return response


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def password_reset_page(request, uidb64: str, token: str):
    if request.method == "GET":
        valid = password_reset.user_for_link(uid=uidb64, token=token) is not None
        return _page(request, {"state": "form" if valid else "invalid"}, status=200 if valid else 400)
    password = request.POST.get("new_password", "")[:MAX_PASSWORD]
    again = request.POST.get("new_password2", "")[:MAX_PASSWORD]
    if password != again:
        return _page(request, {"state": "form", "errors": ["The two passwords differ."]}, status=400)
    try:
        password_reset.check_rate(
            request=request,
            group="password-reset-confirm",
            ip_rate=settings.PASSWORD_RESET_CONFIRM_RATE_PER_IP,
            account=uidb64,
            account_rate=settings.PASSWORD_RESET_CONFIRM_RATE_PER_ACCOUNT,
        )
        password_reset.password_reset_confirm(uid=uidb64, token=token, new_password=password)
    except RateLimited as exc:
        response = _page(request, {"state": "form", "errors": [exc.message]}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except ValidationFailed as exc:
        if exc.code == "invalid_token":
            return _page(request, {"state": "invalid"}, status=400)
        errors = [str(m) for msgs in exc.details.values() for m in msgs] or [exc.message]
        return _page(request, {"state": "form", "errors": errors}, status=400)
    return _page(request, {"state": "done"})
