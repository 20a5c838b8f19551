"""The live feed: ``/ws/notifications/`` (docs/api.md, "WebSocket feed").

Protocol (JSON text frames):
- connect with an access JWT in ``?token=`` or as a ``Sec-WebSocket-Protocol`` value
  (``accounts/socket_auth.py`` resolves it); a missing, bad or expired token is accepted and
  closed at once with code 4401 (a close before accept would be an HTTP 403 handshake
  rejection and the client would never see the code).
- server -> client: ``{"type":"unread_count","count":N}`` on connect and whenever the count
  changes elsewhere (another tab, the REST API); ``{"type":"notification","notification":{id,
  kind,title,body,request,created_at}}`` per new notification; ``{"type":"pong"}``;
  ``{"type":"error","code":...,"message":...}`` for a bad client message.
- client -> server: ``{"type":"mark_read","id":"<uuid>"}`` (own notifications only; answered
  with the new ``unread_count``) and ``{"type":"ping"}``.

Each socket joins only the group of its own user: nobody receives another user's messages.
Push is best effort: a client that reconnects catches up through ``unread_count`` and the REST list.

Redis (the channel layer) failing does not kill the socket (issue 19.11): the consumer keeps
it open and retries the layer with a short backoff; once the layer answers again it rejoins its
group (a restarted Redis forgot it) and sends a fresh ``unread_count`` (what was pushed in the
meantime is lost; the count and the REST list catch up). If the layer stays down longer than
``WS_LAYER_GRACE_SECONDS``, or cannot be reached at connect, the socket is closed cleanly with
code 4503 (like HTTP 503: try again later): reconnect with backoff.
"""

import asyncio
import contextlib
import itertools
import logging
import time

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from core import metrics
from core.parsers import loads_bounded
from notifications.groups import group_for

logger = logging.getLogger(__name__)

UNAUTHORIZED = 4401
# Like 4401 for HTTP 401: HTTP 503, retry later. (ASGI servers accept only 1000 and 3000-4999,
# so the registry's 1013 Try Again Later cannot be sent.)
TRY_AGAIN_LATER = 4503
# What the channel layer raises when Redis fails (TimeoutError and ConnectionError are OSErrors too).
LAYER_ERRORS = (RedisError, OSError)
_RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0)


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    counted = False

    async def connect(self):
        user = self.scope.get("user")
        subprotocol = self.scope.get("token_subprotocol")
        if user is None or not user.is_authenticated:
            await self.accept(subprotocol=subprotocol)
            await self.close(code=UNAUTHORIZED, reason="unauthorized")
            return
        self.user = user
        # Join first, count second: a notification committed in between is counted and pushed, never lost.
        try:
            await self.channel_layer.group_add(group_for(user.pk), self.channel_name)
        except LAYER_ERRORS as exc:
            logger.warning("websocket: channel layer unavailable at connect (%s: %s)", type(exc).__name__, exc)
            await self.accept(subprotocol=subprotocol)
            await self.close(code=TRY_AGAIN_LATER, reason="try again later")
            return
        self.group = group_for(user.pk)
        await self.accept(subprotocol=subprotocol)
        metrics.WS_CONNECTIONS.inc()
        self.counted = True
        await self.send_json({"type": "unread_count", "count": await self._unread_count()})

    async def disconnect(self, code):
        if self.counted:
            metrics.WS_CONNECTIONS.dec()
            self.counted = False
        if self.group:
            # Redis down: the membership expires on its own (channels-redis group_expiry).
            with contextlib.suppress(*LAYER_ERRORS):
                await self.channel_layer.group_discard(self.group, self.channel_name)

    # --- the channel layer, surviving Redis hiccups ------------------------------------------
    # channels' consumer loop awaits ``self.channel_receive()`` and dies on its first exception
    # (the client saw close 1006). The loop assigns the layer's receive here and awaits one that
    # retries instead: recovery and a lasting outage come back as the messages handled below.
    @property
    def channel_receive(self):
        return self._receive_surviving_outages

    @channel_receive.setter
    def channel_receive(self, layer_receive):
        self._layer_receive = layer_receive

    async def _receive_surviving_outages(self):
        try:
            return await self._layer_receive()
        except LAYER_ERRORS as exc:
            logger.warning("websocket: channel layer failed (%s: %s); retrying", type(exc).__name__, exc)
        if self.group is None:
            raise StopConsumer()  # a socket refused at connect: nothing to keep open
        failed_since = time.monotonic()
        for attempt in itertools.count():
            await asyncio.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
            if time.monotonic() - failed_since >= settings.WS_LAYER_GRACE_SECONDS:
                return {"type": "layer.lost"}
            try:
                # The probe is the rejoin: a restarted Redis has forgotten the group.
                await self.channel_layer.group_add(self.group, self.channel_name)
            except LAYER_ERRORS:
                continue
            return {"type": "layer.recovered"}

    async def layer_recovered(self, event):
        logger.warning("websocket: channel layer back; catching the client up")
        await self.send_json({"type": "unread_count", "count": await self._unread_count()})

    async def layer_lost(self, event):
        logger.error("websocket: channel layer down for %ss; closing 4503", settings.WS_LAYER_GRACE_SECONDS)
        await self.close(code=TRY_AGAIN_LATER, reason="try again later")

    # --- client -> server ---------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self._error("bad_message", "Send JSON text frames.")
            return
        try:
            content = loads_bounded(text_data)
        except ValueError:
            await self._error("bad_message", "Invalid JSON.")
            return
        if not isinstance(content, dict):
            await self._error("bad_message", "Expected a JSON object with a 'type'.")
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "mark_read":
            count = await self._mark_read(content.get("id"))
            if count is None:
                await self._error("not_found", "Notification not found.")
            else:
                await self.send_json({"type": "unread_count", "count": count})
        else:
            await self._error("unknown_type", "Known message types: mark_read, ping.")

    async def _error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})

    # --- group messages (server -> client) ------------------------------------------------
    async def notification_created(self, event):
        await self.send_json({"type": "notification", "notification": event["notification"]})

    async def unread_changed(self, event):
        if event.get("origin") != self.channel_name:  # the origin socket got its own answer already
            await self.send_json({"type": "unread_count", "count": event["count"]})

    # --- database ----------------------------------------------------------------------------
    @database_sync_to_async
    def _unread_count(self) -> int:
        from notifications import selectors

        return selectors.unread_count(user=self.user)

    @database_sync_to_async
    def _mark_read(self, notification_id) -> int | None:
        from core.exceptions import NotFound
        from notifications import selectors, services

        try:
            services.mark_read(user=self.user, notification_id=notification_id, origin_channel=self.channel_name)
        except NotFound:
            return None
        return selectors.unread_count(user=self.user)
