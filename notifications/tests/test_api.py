"""REST: notifications/ (own only, unread filter, paginated), read, read-all, preferences."""

import uuid

import pytest

from core.testing import api_client, error_code
from notifications.models import Kind, Notification, NotificationPreference
from notifications.tests.conftest import make_notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/"


def test_list_is_own_only_newest_first_and_paginated(alice, bob, outsider):
    for i in range(3):
        make_notification(alice, title=f"A{i}")
    make_notification(bob, title="B")
    make_notification(outsider, title="O")

    body = api_client(alice).get(URL, {"page_size": 2}).json()
    assert body["count"] == 3 and body["next"] and body["previous"] is None
    assert [n["title"] for n in body["results"]] == ["A2", "A1"]
    assert set(body["results"][0]) == {
        "id", "kind", "title", "body", "request", "data", "read_at", "unread", "created_at",
    }  # fmt: skip
    page2 = api_client(alice).get(URL, {"page_size": 2, "page": 2}).json()
    assert [n["title"] for n in page2["results"]] == ["A0"]


def test_unread_filter(alice):
    read, unread = make_notification(alice, title="read"), make_notification(alice, title="unread")
    Notification.objects.filter(pk=read.pk).update(read_at=read.created_at)
    client = api_client(alice)
    assert [n["id"] for n in client.get(URL, {"unread": "true"}).json()["results"]] == [str(unread.id)]
    assert [n["id"] for n in client.get(URL, {"unread": "false"}).json()["results"]] == [str(read.id)]
    assert client.get(URL).json()["count"] == 2


def test_list_query_count_does_not_grow_with_rows(alice, django_assert_num_queries):
    client = api_client(alice)
    make_notification(alice)
    # JWT user (+ organization), count, page.
    with django_assert_num_queries(3):
        assert client.get(URL).status_code == 200
    for _ in range(10):
        make_notification(alice)
    with django_assert_num_queries(2):  # the user from the process's copy now (accounts/auth_cache.py)
        assert client.get(URL, {"unread": "true"}).json()["count"] == 11


def test_requires_authentication():
    response = api_client().get(URL)
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_mark_read_own(alice):
    n = make_notification(alice)
    response = api_client(alice).post(f"{URL}{n.id}/read/")
    assert response.status_code == 200
    assert response.json()["id"] == str(n.id) and response.json()["read_at"] and not response.json()["unread"]
    n.refresh_from_db()
    first_read_at = n.read_at
    assert first_read_at is not None
    # Again: still 200, the first read time stands.
    assert api_client(alice).post(f"{URL}{n.id}/read/").status_code == 200
    n.refresh_from_db()
    assert n.read_at == first_read_at


@pytest.mark.parametrize("whose", ["same_org_user", "other_org_user", "nobody"])
def test_mark_read_of_anything_not_own_is_404_and_changes_nothing(alice, bob, outsider, whose):
    target = {"same_org_user": bob, "other_org_user": outsider}.get(whose)
    n_id = make_notification(target).id if target else uuid.uuid4()
    for path in (f"{URL}{n_id}/read/", f"{URL}{n_id}/"):
        method = "post" if path.endswith("read/") else "get"
        response = getattr(api_client(alice), method)(path)
        assert response.status_code == 404
        assert error_code(response) == "not_found"
    if target:
        assert Notification.objects.get(pk=n_id).read_at is None


def test_retrieve_own(alice):
    n = make_notification(alice, title="Hello")
    assert api_client(alice).get(f"{URL}{n.id}/").json()["title"] == "Hello"


def test_mark_read_is_idempotent_with_a_key(alice):
    n = make_notification(alice)
    client = api_client(alice)
    first = client.post(f"{URL}{n.id}/read/", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post(f"{URL}{n.id}/read/", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_read_all_marks_only_own(alice, bob):
    for _ in range(3):
        make_notification(alice)
    bobs = make_notification(bob)
    response = api_client(alice).post(f"{URL}read-all/")
    assert response.status_code == 200
    assert response.json() == {"marked": 3, "unread_count": 0}
    assert not Notification.objects.filter(recipient=alice, read_at__isnull=True).exists()
    bobs.refresh_from_db()
    assert bobs.read_at is None
    assert api_client(alice).post(f"{URL}read-all/").json() == {"marked": 0, "unread_count": 0}


def test_preferences_default_all_enabled(alice):
    body = api_client(alice).get(f"{URL}preferences/").json()
    assert set(body) == set(Kind.values)
    assert all(channels == {"in_app": True, "email": True} for channels in body.values())


def test_preferences_put_subset_and_read_back(alice, bob):
    client = api_client(alice)
    response = client.put(
        f"{URL}preferences/",
        {"task_reminder": {"email": False}, "request_commented": {"in_app": False, "email": False}},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["task_reminder"] == {"in_app": True, "email": False}
    assert body["request_commented"] == {"in_app": False, "email": False}
    assert body["task_assigned"] == {"in_app": True, "email": True}
    assert client.get(f"{URL}preferences/").json() == body
    # Switching back on updates the same row.
    client.put(f"{URL}preferences/", {"task_reminder": {"email": True}}, format="json")
    assert NotificationPreference.objects.filter(user=alice, kind="task_reminder", channel="email").get().enabled
    # Bob is untouched.
    assert api_client(bob).get(f"{URL}preferences/").json()["task_reminder"]["email"] is True


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"task_bogus": {"email": False}}, "task_bogus"),
        ({"task_assigned": {"sms": False}}, "task_assigned.sms"),
        ({"task_assigned": {"email": "no"}}, "task_assigned.email"),
        ({"task_assigned": True}, "task_assigned"),
        ({}, "non_field_errors"),
        ([], "non_field_errors"),
    ],
)
def test_preferences_validation_is_400_envelope_and_changes_nothing(alice, payload, field):
    response = api_client(alice).put(
        f"{URL}preferences/", {"task_reminder": {"email": False}, **payload} if payload else payload, format="json"
    )
    assert response.status_code == 400, response.json()
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["details"]
    assert not NotificationPreference.objects.filter(user=alice).exists()
