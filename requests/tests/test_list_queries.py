"""Statements of a request's comments/, attachments/ and timeline/ do not grow with their rows (1, then 10)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.testing import api_client
from requests import services
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db

# (The caller from the process's copy, warmed first: accounts/auth_cache.py.) The caller's delegations
# (visibility), the request, then the rows with their authors joined (not paginated: all of them).
COMMENTS = 3
ATTACHMENTS = 3
# ... then the ids of the request's tasks, comments and attachments, the audit rows with their actors.
TIMELINE = 6


@pytest.fixture
def p(org):
    return People(org)


@pytest.fixture
def rid(org, p):
    version = make_flow(org, [user_step(1, "M", p.mark)])
    response = api_client(p.alice).post(
        "/api/v1/requests/",
        {"workflow": version.definition.key, "title": "T", "data": {"amount": 1, "vendor": "v"}, "submit": True},
        format="json",
    )
    return response.json()["id"]


def comment(p, rid, i):
    services.comment_add(actor=p.alice, request_id=rid, body=f"Comment {i}")


def attach(p, rid, i):
    upload = SimpleUploadedFile(f"quote-{i}.pdf", b"%PDF-1.4 quote", content_type="application/pdf")
    services.attachment_add(actor=p.alice, request_id=rid, file=upload)


@pytest.mark.parametrize(
    ("what", "add", "statements"),
    [("comments", comment, COMMENTS), ("attachments", attach, ATTACHMENTS)],
    ids=["comments", "attachments"],
)
def test_comments_and_attachments_lists(p, rid, what, add, statements, django_assert_num_queries):
    client = api_client(p.mark)  # the approver: a participant, not the requester
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on
    url = f"/api/v1/requests/{rid}/{what}/"
    add(p, rid, 0)
    with django_assert_num_queries(statements):
        assert len(client.get(url).json()) == 1
    for i in range(1, 10):
        add(p, rid, i)
    with django_assert_num_queries(statements):
        assert len(client.get(url).json()) == 10


def test_timeline(p, rid, django_assert_num_queries):
    client = api_client(p.mark)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on
    url = f"/api/v1/requests/{rid}/timeline/"
    with django_assert_num_queries(TIMELINE):
        before = len(client.get(url).json())
    for i in range(10):  # an audit row each, under comments and attachments alike
        comment(p, rid, i)
        attach(p, rid, i)
    with django_assert_num_queries(TIMELINE):
        assert len(client.get(url).json()) == before + 20
