"""One ASGI application: Django for HTTP, Channels for ``/ws/...`` with JWT socket auth."""

import os

from django.core.asgi import get_asgi_application

from config.startup import or_refuse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _start():
    from core import tracing

    tracing.configure("workflow-ws")  # before the handler loads its middleware (off: does nothing)
    return get_asgi_application()


django_asgi_app = or_refuse(_start)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.socket_auth import JWTAuthMiddleware  # noqa: E402
from config.ws_urls import websocket_urlpatterns  # noqa: E402
from core.ws_origin import TokenFeedOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": TokenFeedOriginValidator(JWTAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
