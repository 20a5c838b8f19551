"""WebSocket origin check for a token-authenticated feed.

Browsers always send ``Origin``: it must be one of ``ALLOWED_HOSTS`` or
``CORS_ALLOWED_ORIGINS``. Clients that send none (mobile apps, servers) are let
through: the socket authenticates with a bearer token, never a cookie, so a
foreign page gains nothing by opening it (no cross-site WebSocket hijacking).
"""

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    hosts += [urlparse(origin).netloc for origin in settings.CORS_ALLOWED_ORIGINS]
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts


class TokenFeedOriginValidator(OriginValidator):
    def __init__(self, application):
        super().__init__(application, [])

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        # Read per handshake so settings changes (and tests) apply without a restart.
        self.allowed_origins = _allowed_hosts()
        return self.validate_origin(parsed_origin)
