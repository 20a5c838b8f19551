"""``GET tasks/`` (the inbox list): the same answer as the serializer over ``selectors.inbox``, in
one statement per page after the caller and their delegations (issue 14)."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from approvals import selectors
from approvals.filters import TaskFilter
from approvals.models import ApprovalTask, TaskStatus
from approvals.serializers import TaskListSerializer
from approvals.tests.test_engine import decide, delegate, open_task
from approvals.tests.test_engine import submit as submit_request
from approvals.views import _UNFILTERED_INBOX
from core.testing import api_client, error_code
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db


def submit(user, version, title):
    return submit_request(user, version, title=title)["id"]


def set_sla(rid, name, *, due_in_hours=None, level=0):
    due = timezone.now() + timedelta(hours=due_in_hours) if due_in_hours is not None else None
    ApprovalTask.objects.filter(request_id=rid, step__name=name).update(due_at=due, escalation_level=level)


@pytest.fixture
def world(org, other_org):
    """Own tasks with and without deadlines (one overdue, one escalated, one decided), tasks seen
    through a delegation (one of them the delegate's own request: not theirs to decide), a
    delegation scoped to one workflow, one made before routing (the assignment acts for the
    delegator), and another organization's inbox."""
    p, q = People(org), People(other_org)
    pair = make_flow(org, [user_step(1, "M", p.mark), user_step(1, "F", p.fiona)])
    rids = [submit(p.alice, pair, title=f"Pair {i}") for i in range(5)]
    set_sla(rids[0], "M", due_in_hours=-2, level=2)
    set_sla(rids[1], "M", due_in_hours=24, level=1)
    set_sla(rids[2], "M", due_in_hours=5)
    set_sla(rids[0], "F", due_in_hours=-1)
    assert decide(p.mark, open_task(rids[3], "M")).status_code == 200
    fionas = make_flow(org, [user_step(1, "F", p.fiona)])
    submit(p.mark, fionas, title="Mark's own")  # with fiona's delegation: still not mark's to decide
    submit(p.alice, fionas, title="Fiona's")
    scoped, other = make_flow(org, [user_step(1, "B", p.bob)]), make_flow(org, [user_step(1, "B", p.bob)])
    assert delegate(p.fiona, p.mark).status_code == 201
    assert delegate(p.bob, p.mark, workflow=scoped.definition.key).status_code == 201
    submit(p.alice, scoped, title="Bob's, in scope")
    submit(p.alice, other, title="Bob's, out of scope")
    submit(p.alice, fionas, title="Routed to mark for fiona")
    assert delegate(p.lena, p.carl).status_code == 201
    submit(p.alice, make_flow(org, [user_step(1, "L", p.lena)]), title="Lena's, after")
    submit(q.alice, make_flow(other_org, [user_step(1, "M", q.mark)]), title="Elsewhere")
    return {"p": p, "q": q, "pair": pair, "fionas": fionas, "rids": rids}


def serialized(user, params: dict) -> list[dict]:
    """What the endpoint answered before issue 14: the serializer over ``selectors.inbox``, filtered."""
    request = APIRequestFactory().get("/api/v1/tasks/")
    request.user = user
    tasks = TaskFilter(params, queryset=selectors.inbox(user=user, status=None)).qs
    return [dict(item) for item in TaskListSerializer(tasks, many=True, context={"request": request}).data]


QUERIES = [
    {},
    {"status": "all"},
    {"status": "approved,pending"},
    {"status": "approved"},
    {"overdue": "true"},
    {"overdue": "false", "status": "all"},
    {"page_size": "2"},
    {"page_size": "2", "page": "2"},
    {"page_size": "3", "page": "last"},
    {"page_size": "1", "page": "3", "status": "all"},
]


@pytest.mark.parametrize("params", QUERIES)
def test_the_list_answers_what_the_serializer_did(world, params):
    p, q = world["p"], world["q"]
    for user in (p.mark, p.fiona, p.bob, p.carl, p.lena, p.alice, q.mark):
        r = api_client(user).get("/api/v1/tasks/", params)
        everything = serialized(user, {k: v for k, v in params.items() if k not in ("page", "page_size")})
        size = int(params.get("page_size", 25))
        pages = max(1, -(-len(everything) // size))
        number = pages if params.get("page") == "last" else int(params.get("page", 1))
        if number > pages:  # past the end for this user
            assert r.status_code == 404 and error_code(r) == "not_found"
            continue
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["count"] == len(everything)
        assert body["results"] == everything[(number - 1) * size : number * size], user.email
        next_page = parse_qs(urlsplit(body["next"]).query)["page"] if body["next"] else None
        assert next_page == ([str(number + 1)] if number < pages else None)
        assert (body["previous"] is not None) == (number > 1)
    # the unfiltered inbox ran compiled (with and without delegations), not the queryset each time
    assert all(compiled is not None for compiled in _UNFILTERED_INBOX._shapes.values())


def test_the_cases_are_covered(world):
    p = world["p"]
    mine = serialized(p.mark, {"status": "all"})
    titles = {i["request_title"] for i in mine}
    assert "Fiona's" in titles and "Bob's, in scope" in titles and "Routed to mark for fiona" in titles
    assert "Mark's own" not in titles and "Bob's, out of scope" not in titles
    assert {i["on_behalf_of"] for i in mine} == {None, str(p.fiona.pk), str(p.bob.pk)}
    assert any(i["overdue"] for i in mine) and any(i["due_at"] is None for i in mine)
    assert {i["status"] for i in mine} == {"pending", "approved"}
    assert [i["on_behalf_of"] for i in serialized(p.carl, {})] == [str(p.lena.pk)]
    assert {i["request_title"] for i in serialized(world["q"].mark, {})} == {"Elsewhere"}


def test_filters_by_request_and_workflow(world):
    p = world["p"]
    rid = world["rids"][1]
    for params in ({"request": rid}, {"workflow": world["fionas"].definition.key}, {"workflow": "nope"}):
        r = api_client(p.mark).get("/api/v1/tasks/", params)
        assert r.status_code == 200 and r.json()["results"] == serialized(p.mark, params)
    assert api_client(p.mark).get("/api/v1/tasks/", {"request": rid}).json()["count"] == 2  # his, fiona's


@pytest.mark.parametrize("page", ["9", "0", "-1", "x", "2.0"])
def test_a_page_that_is_not_there_is_a_404(world, page):
    r = api_client(world["p"].mark).get("/api/v1/tasks/", {"page": page})
    assert r.status_code == 404 and error_code(r) == "not_found"


def test_bad_filters_are_400s_naming_them(world):
    r = api_client(world["p"].mark).get("/api/v1/tasks/", {"status": "bogus", "overdue": "maybe"})
    assert r.status_code == 400 and set(r.json()["error"]["details"]) == {"status", "overdue"}


# Statements of a list: their delegations, the page with its total; the caller from the process's
# copy (accounts/auth_cache.py: each test makes a first request to warm it).
LIST = 2


@pytest.mark.parametrize("params", [{}, {"status": "all"}, {"overdue": "false"}])
def test_statements_do_not_grow_with_the_page(world, params, django_assert_num_queries):
    p = world["p"]
    franks = make_flow(p.org, [user_step(1, "Fr", p.frank)])
    for i in range(10):
        submit(p.alice, world["pair"], title=f"More {i}")
        submit(p.alice, franks, title=f"Frank's {i}")
    for user in (p.mark, p.frank):  # with delegations in force, and without
        client = api_client(user)
        assert client.get("/api/v1/auth/me/").status_code == 200
        for size in (1, 10):
            with django_assert_num_queries(LIST):
                r = client.get("/api/v1/tasks/", {**params, "page_size": size})
            assert r.status_code == 200 and len(r.json()["results"]) == size


def test_only_the_last_page_or_a_page_past_the_end_counts_apart(world, django_assert_num_queries):
    mark, alice = api_client(world["p"].mark), api_client(world["q"].alice)
    assert mark.get("/api/v1/auth/me/").status_code == 200 and alice.get("/api/v1/auth/me/").status_code == 200
    with django_assert_num_queries(LIST + 1):  # the total first, to know which page is the last
        assert mark.get("/api/v1/tasks/", {"page": "last", "page_size": 2}).status_code == 200
    with django_assert_num_queries(LIST + 1):  # no row at that offset: is the page empty or past the end?
        assert mark.get("/api/v1/tasks/", {"page": "40"}).status_code == 404
    assert not ApprovalTask.objects.filter(status=TaskStatus.PENDING, assignments__assignee=world["q"].alice).exists()
    with django_assert_num_queries(LIST):  # an empty inbox: page 1 with nothing on it, count 0
        r = alice.get("/api/v1/tasks/")
    assert r.json() == {"count": 0, "next": None, "previous": None, "results": []}
