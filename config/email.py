"""``EMAIL_URL`` -> Django EMAIL_* settings: smtp://user:pass@host:587?tls=1, console://, locmem://."""

from urllib.parse import parse_qs, unquote, urlparse

_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
}


def parse_email_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in _BACKENDS:
        raise ValueError(f"EMAIL_URL scheme must be one of {sorted(_BACKENDS)}")
    query = parse_qs(parsed.query)
    return {
        "EMAIL_BACKEND": _BACKENDS[parsed.scheme],
        "EMAIL_HOST": parsed.hostname or "localhost",
        "EMAIL_PORT": parsed.port or (465 if parsed.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parsed.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
        "EMAIL_USE_TLS": query.get("tls", ["0"])[0] in {"1", "true"},
        "EMAIL_USE_SSL": parsed.scheme == "smtps",
    }
