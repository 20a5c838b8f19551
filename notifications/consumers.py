"""The live feed: ``/ws/notifications/`` (DESIGN §4). Extended by the notifications issue."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

UNAUTHORIZED = 4401


def group_for(user_id) -> str:
    return f"user.{user_id}"


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHORIZED)
            return
        self.group = group_for(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept(subprotocol=self.scope.get("token_subprotocol"))
        await self.send_json({"type": "unread_count", "count": await self._unread_count(user)})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def notification_created(self, event):
        await self.send_json({"type": "notification", "notification": event["notification"]})

    @database_sync_to_async
    def _unread_count(self, user) -> int:
        from notifications.models import Notification

        return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
