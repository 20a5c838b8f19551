"""The demo scenario end to end through the REST API, on the seeded demo data (``seed_demo``, docs/architecture.md)."""

import pytest

from accounts.models import User
from notifications.models import Notification
from workflows import demo_seed as demo

pytestmark = pytest.mark.django_db


def login(email):
    from rest_framework.test import APIClient

    client = APIClient()
    r = client.post("/api/v1/auth/login/", {"email": email, "password": demo.DEMO_PASSWORD}, format="json")
    assert r.status_code == 200, r.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    return client


@pytest.fixture
def acme(db):
    demo.seed()
    return {
        name: login(f"{name}@acme.example") for name in ("alice", "mark", "fiona", "frank", "lena", "carl", "admin")
    }


def inbox(client):
    r = client.get("/api/v1/tasks/")
    assert r.status_code == 200
    return r.json()["results"]


def approve_only(client, rid, comment=""):
    [task] = [t for t in inbox(client) if t["request"] == rid]
    r = client.post(f"/api/v1/tasks/{task['id']}/approve/", {"comment": comment}, format="json")
    assert r.status_code == 200, r.json()
    return r.json()


def test_purchase_20000_full_route(acme):
    alice = acme["alice"]
    r = alice.post(
        "/api/v1/requests/",
        {
            "workflow": "purchase-request",
            "title": "Build server",
            "data": {"amount": 20000, "vendor": "Dell", "justification": "CI capacity"},
            "submit": True,
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    req = r.json()
    rid = req["id"]
    assert req["reference"].startswith("PUR-") and req["status"] == "pending" and req["current_stage"] == 1
    mark = User.objects.get(email="mark@acme.example")
    assert req["tasks"][0]["assignees"][0]["user"] == str(mark.pk)

    approve_only(acme["mark"], rid, "fine")
    detail = alice.get(f"/api/v1/requests/{rid}/").json()
    assert detail["current_stage"] == 2
    stage2 = {t["step_name"]: t for t in detail["tasks"] if t["stage"] == 2}
    assert set(stage2) == {"Finance review", "Legal review"}
    assert all(t["status"] == "pending" for t in stage2.values())
    assert len(stage2["Finance review"]["assignees"]) == 2

    approve_only(acme["fiona"], rid)
    assert alice.get(f"/api/v1/requests/{rid}/").json()["current_stage"] == 2  # frank still to approve (all)
    approve_only(acme["lena"], rid)
    assert alice.get(f"/api/v1/requests/{rid}/").json()["current_stage"] == 2
    approve_only(acme["frank"], rid)
    detail = alice.get(f"/api/v1/requests/{rid}/").json()
    assert detail["current_stage"] == 3 and detail["status"] == "pending"

    approve_only(acme["carl"], rid, "go")
    detail = alice.get(f"/api/v1/requests/{rid}/").json()
    assert detail["status"] == "approved" and detail["completed_at"]
    assert [t["status"] for t in detail["tasks"]] == ["approved"] * 4
    alice_user = User.objects.get(email="alice@acme.example")
    assert Notification.objects.filter(recipient=alice_user, kind="request_approved").count() == 1
    timeline = alice.get(f"/api/v1/requests/{rid}/timeline/").json()
    assert timeline[0]["action"] == "request.created" and timeline[-1]["action"] == "request.approved"


def test_purchase_3000_skips_legal_and_cfo(acme):
    alice = acme["alice"]
    rid = alice.post(
        "/api/v1/requests/",
        {"workflow": "purchase-request", "title": "Monitor", "data": {"amount": 3000, "vendor": "LG"}, "submit": True},
        format="json",
    ).json()["id"]
    approve_only(acme["mark"], rid)
    assert inbox(acme["lena"]) == []
    approve_only(acme["fiona"], rid)
    approve_only(acme["frank"], rid)
    detail = alice.get(f"/api/v1/requests/{rid}/").json()
    assert detail["status"] == "approved"
    by_name = {t["step_name"]: t["status"] for t in detail["tasks"]}
    assert by_name == {
        "Manager approval": "approved",
        "Finance review": "approved",
        "Legal review": "skipped",
        "CFO approval": "skipped",
    }
    assert inbox(acme["carl"]) == []
