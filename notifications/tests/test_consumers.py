"""The WebSocket contract on the real channels-redis layer (docs/api.md, "WebSocket feed")."""

import uuid

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections, transaction

from config.asgi import application
from core.testing import api_client
from notifications.models import Channel, Kind, Notification, NotificationPreference
from notifications.services import notify
from notifications.tests.conftest import access_token, make_notification

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio, pytest.mark.usefixtures("redis_layer")]

ORIGIN = [(b"origin", b"http://testserver")]


@pytest_asyncio.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    # The consumer's DB thread keeps its connection (CONN_MAX_AGE); close it so the test DB can be dropped.
    await database_sync_to_async(connections.close_all)()


def communicator(query: str = "", subprotocols=None) -> WebsocketCommunicator:
    path = "/ws/notifications/" + (f"?{query}" if query else "")
    headers = list(ORIGIN)
    if subprotocols:  # as a browser sends them (the communicator alone only fills scope["subprotocols"])
        headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
    return WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)


async def connected(user) -> WebsocketCommunicator:
    comm = communicator(f"token={access_token(user)}")
    ok, _ = await comm.connect()
    assert ok
    return comm


async def assert_closed_unauthorized(comm):
    ok, _ = await comm.connect()
    # Accepted then closed: a real client sees the close code (a close before accept is an HTTP 403).
    assert ok
    assert await comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401, "reason": "unauthorized"}
    await comm.disconnect(code=4401)  # the server's answer to the close: the consumer ends cleanly


async def test_missing_token_closes_4401():
    await assert_closed_unauthorized(communicator())


async def test_bad_token_closes_4401():
    await assert_closed_unauthorized(communicator("token=not.a.jwt"))


async def test_expired_token_closes_4401(alice):
    await assert_closed_unauthorized(communicator(f"token={access_token(alice, expired=True)}"))


async def test_inactive_user_closes_4401(alice):
    token = access_token(alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    await assert_closed_unauthorized(communicator(f"token={token}"))


async def test_token_revoked_by_logout_closes_4401(alice):
    """Issue 19.3: a logout ends the access tokens issued before it, for the WebSocket too."""
    from accounts import services
    from core.testing import PASSWORD

    _, tokens = await database_sync_to_async(services.login)(email=alice.email, password=PASSWORD)
    ok = communicator(f"token={tokens['access']}")
    assert (await ok.connect())[0]
    assert (await ok.receive_json_from(timeout=2))["type"] == "unread_count"
    await ok.disconnect()
    await database_sync_to_async(services.logout)(user=alice, refresh=tokens["refresh"])
    await assert_closed_unauthorized(communicator(f"token={tokens['access']}"))


async def test_bad_token_as_subprotocol_closes_4401_with_the_protocol_echoed():
    comm = communicator(subprotocols=["a.b.c"])
    ok, subprotocol = await comm.connect()
    assert ok and subprotocol == "a.b.c"  # browsers need the echo to complete the handshake and see 4401
    assert (await comm.receive_output(timeout=2))["code"] == 4401
    await comm.disconnect(code=4401)


async def test_token_as_subprotocol_connects(alice):
    token = access_token(alice)
    comm = communicator(subprotocols=[token])
    ok, subprotocol = await comm.connect()
    assert ok and subprotocol == token
    assert await comm.receive_json_from() == {"type": "unread_count", "count": 0}
    await comm.disconnect()


async def test_unread_count_on_connect_counts_own_unread_only(alice, bob):
    await database_sync_to_async(make_notification)(alice)
    await database_sync_to_async(make_notification)(alice)
    read = await database_sync_to_async(make_notification)(alice)
    await database_sync_to_async(Notification.objects.filter(pk=read.pk).update)(read_at=read.created_at)
    await database_sync_to_async(make_notification)(bob)

    comm = await connected(alice)
    assert await comm.receive_json_from() == {"type": "unread_count", "count": 2}
    await comm.disconnect()


async def test_each_user_receives_only_their_own(alice, bob, outsider):
    comms = {u.email: await connected(u) for u in (alice, bob, outsider)}
    for comm in comms.values():
        assert (await comm.receive_json_from())["type"] == "unread_count"

    n = await database_sync_to_async(make_notification)(alice, title="For Alice", body="Body")

    message = await comms[alice.email].receive_json_from(timeout=3)
    assert message == {
        "type": "notification",
        "notification": {
            "id": str(n.id),
            "kind": "task_assigned",
            "title": "For Alice",
            "body": "Body",
            "request": None,
            "created_at": n.created_at.isoformat(),
        },
    }
    assert await comms[bob.email].receive_nothing(timeout=0.5)
    assert await comms[outsider.email].receive_nothing(timeout=0.1)
    for comm in comms.values():
        await comm.disconnect()


async def test_nothing_is_pushed_for_a_rolled_back_change(alice):
    comm = await connected(alice)
    await comm.receive_json_from()

    def rolled_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            notify(recipient=alice, kind=Kind.TASK_ASSIGNED, title="never")
            raise RuntimeError

    await database_sync_to_async(rolled_back)()
    assert await comm.receive_nothing(timeout=0.5)
    assert not await database_sync_to_async(Notification.objects.filter(recipient=alice).exists)()
    await comm.disconnect()


async def test_in_app_disabled_is_stored_read_and_not_pushed(alice):
    await database_sync_to_async(NotificationPreference.objects.create)(
        user=alice, kind=Kind.TASK_ASSIGNED, channel=Channel.IN_APP, enabled=False
    )
    comm = await connected(alice)
    await comm.receive_json_from()
    n = await database_sync_to_async(make_notification)(alice)
    assert await comm.receive_nothing(timeout=0.5)
    n = await database_sync_to_async(Notification.objects.get)(pk=n.pk)
    assert n.read_at is not None
    # Other kinds still arrive.
    await database_sync_to_async(make_notification)(alice, kind=Kind.REQUEST_APPROVED)
    assert (await comm.receive_json_from(timeout=3))["notification"]["kind"] == "request_approved"
    await comm.disconnect()


async def test_mark_read_own_answers_the_new_count_and_syncs_other_tabs(alice):
    first = await database_sync_to_async(make_notification)(alice)
    await database_sync_to_async(make_notification)(alice)
    tab1, tab2 = await connected(alice), await connected(alice)
    assert (await tab1.receive_json_from())["count"] == 2
    assert (await tab2.receive_json_from())["count"] == 2

    await tab1.send_json_to({"type": "mark_read", "id": str(first.id)})
    assert await tab1.receive_json_from(timeout=3) == {"type": "unread_count", "count": 1}
    assert await tab2.receive_json_from(timeout=3) == {"type": "unread_count", "count": 1}
    assert await tab1.receive_nothing(timeout=0.3)  # one answer, not an echo of the group message too
    first = await database_sync_to_async(Notification.objects.get)(pk=first.pk)
    assert first.read_at is not None

    # Marking it again changes nothing and still answers the count.
    await tab1.send_json_to({"type": "mark_read", "id": str(first.id)})
    assert await tab1.receive_json_from(timeout=3) == {"type": "unread_count", "count": 1}
    assert await tab2.receive_nothing(timeout=0.3)
    await tab1.disconnect()
    await tab2.disconnect()


async def test_mark_read_of_someone_elses_notification_is_not_found_and_changes_nothing(alice, bob):
    bobs = await database_sync_to_async(make_notification)(bob)
    comm = await connected(alice)
    await comm.receive_json_from()
    for bad_id in (str(bobs.id), str(uuid.uuid4()), "not-a-uuid", None):
        await comm.send_json_to({"type": "mark_read", "id": bad_id})
        reply = await comm.receive_json_from(timeout=3)
        assert reply["type"] == "error" and reply["code"] == "not_found"
    bobs = await database_sync_to_async(Notification.objects.get)(pk=bobs.pk)
    assert bobs.read_at is None
    await comm.disconnect()


async def test_rest_mark_read_updates_the_open_socket(alice):
    n = await database_sync_to_async(make_notification)(alice)
    comm = await connected(alice)
    assert (await comm.receive_json_from())["count"] == 1

    def read_via_rest():
        return api_client(alice).post(f"/api/v1/notifications/{n.id}/read/")

    response = await database_sync_to_async(read_via_rest)()
    assert response.status_code == 200
    assert await comm.receive_json_from(timeout=3) == {"type": "unread_count", "count": 0}
    await comm.disconnect()


async def test_ping_pong_and_bad_messages(alice):
    comm = await connected(alice)
    await comm.receive_json_from()
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from())["code"] == "bad_message"
    await comm.send_to(text_data="[1, 2]")
    assert (await comm.receive_json_from())["code"] == "bad_message"
    # Nested beyond JSON_MAX_DEPTH (10,000 levels raised RecursionError in the consumer): refused, socket open.
    await comm.send_to(text_data="[" * 10_000 + "]" * 10_000)
    assert (await comm.receive_json_from())["code"] == "bad_message"
    await comm.send_json_to({"type": "subscribe", "user": "someone-else"})
    assert (await comm.receive_json_from())["code"] == "unknown_type"
    # Still open and working.
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.disconnect()


async def test_embedded_in_memory_layer_delivers_own_only(settings, alice, bob):
    """The embedded default (one process, in-memory layer) speaks the same protocol."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    mine, theirs = await connected(alice), await connected(bob)
    await mine.receive_json_from()
    await theirs.receive_json_from()
    n = await database_sync_to_async(make_notification)(alice)
    assert (await mine.receive_json_from(timeout=3))["notification"]["id"] == str(n.id)
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.disconnect()
    await theirs.disconnect()


async def test_open_sockets_are_counted_for_metrics(alice):
    from prometheus_client import REGISTRY

    def gauge():
        return REGISTRY.get_sample_value("websocket_connections")

    base = gauge()
    comm = await connected(alice)
    await comm.receive_json_from()
    assert gauge() == base + 1
    await assert_closed_unauthorized(communicator())  # refused sockets are not counted
    assert gauge() == base + 1
    await comm.disconnect()
    assert gauge() == base


async def test_tokens_owing_a_second_factor_close_4401(alice):
    """Issue 18.2: where the organization requires 2FA, a password-only login opens auth/ endpoints only."""
    from accounts.models import SecurityPolicy
    from accounts.services import login_complete

    await database_sync_to_async(SecurityPolicy.objects.create)(organization=alice.organization, require_2fa="everyone")
    tokens = await database_sync_to_async(login_complete)(user=alice, claims={"mfa_setup": True})
    await assert_closed_unauthorized(communicator(f"token={tokens['access']}"))
