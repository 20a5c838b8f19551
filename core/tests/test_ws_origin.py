import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _connect(headers, user):
    token = str(AccessToken.for_user(user))
    communicator = WebsocketCommunicator(application, f"/ws/notifications/?token={token}", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.fixture
def member(db):
    from core.testing import make_org, make_user

    return make_user(make_org(), "ws@origin.test")


@override_settings(
    ALLOWED_HOSTS=["approvals.example.com"],
    CORS_ALLOWED_ORIGINS=["https://app.example.com"],
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
)
async def test_origin_rules(member):
    assert await _connect([(b"origin", b"https://approvals.example.com")], member)
    assert await _connect([(b"origin", b"https://app.example.com")], member)
    assert await _connect([], member)  # non-browser client: no Origin, token auth only
    assert not await _connect([(b"origin", b"https://evil.example.net")], member)
