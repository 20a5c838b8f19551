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
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core import metrics
from core.parsers import loads_bounded

UNAUTHORIZED = 4401


def group_for(user_id) -> str:
    return f"user.{user_id}"


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
        self.group = group_for(user.pk)
        # Join first, count second: a notification committed in between is counted and pushed, never lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept(subprotocol=subprotocol)
        metrics.WS_CONNECTIONS.inc()
        self.counted = True
        await self.send_json({"type": "unread_count", "count": await self._unread_count()})

    async def disconnect(self, code):
        if self.counted:
            metrics.WS_CONNECTIONS.dec()
            self.counted = False
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

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
