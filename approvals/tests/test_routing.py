"""Approver resolution (approvals/routing.py): a step naming one user reads that user and the
delegation in force for them in one statement; every rule of ``resolve_approvers`` holds on it
exactly as on the general path (candidates first, their delegations in a second statement)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from approvals import routing
from approvals.models import Delegation
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def _step(org, spec):
    version = make_flow(org, [spec])
    return routing.steps_of(version)[0], version


def _resolve(org, spec, *, requester, data=None, distinct=False, excluded=None):
    step, version = _step(org, spec)
    approvers, reason = routing.resolve_approvers(
        step,
        organization=org,
        requester=requester,
        data=data or {},
        definition_id=version.definition_id,
        distinct=distinct,
        excluded_ids=excluded,
    )
    return [(a.user.pk, a.on_behalf_of.pk if a.on_behalf_of else None, a.reason) for a in approvers], reason


def _delegate(org, frm, to, *, start=-1, hours=24, workflow=None, **fields):
    now = timezone.now()
    return Delegation.objects.create(
        organization=org,
        from_user=frm,
        to_user=to,
        starts_at=now + timedelta(hours=start),
        ends_at=now + timedelta(hours=hours),
        workflow=workflow,
        **fields,
    )


def _named_by_email(p):
    return user_step(1, "Named", p.mark)


def _named_by_id(p):
    return {"stage": 1, "name": "Named", "approver_type": "user", "approver_ref": str(p.mark.pk)}


def _manager(p):  # the general path: alice's manager is mark
    return {"stage": 1, "name": "Named", "approver_type": "requester_manager"}


ROUTES = [_named_by_email, _named_by_id, _manager]


def _admins(p):
    return [(p.admin.pk, None, "fallback_admins")]


@pytest.mark.parametrize("route", ROUTES)
def test_no_delegation_the_named_user_decides(org, p, route):
    assert _resolve(org, route(p), requester=p.alice) == ([(p.mark.pk, None, "route")], "")


@pytest.mark.parametrize("route", ROUTES)
def test_a_delegation_in_force_substitutes_its_delegate(org, p, route):
    _delegate(org, p.mark, p.bob)
    assert _resolve(org, route(p), requester=p.alice) == ([(p.bob.pk, p.mark.pk, "delegation")], "")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "window",
    [
        {"start": -48, "hours": -1},  # expired
        {"start": 2, "hours": 24},  # not started
        {"deleted_at": timezone.now()},  # withdrawn (soft-deleted)
    ],
    ids=["expired", "future", "deleted"],
)
def test_a_delegation_not_in_force_changes_nothing(org, p, route, window):
    _delegate(org, p.mark, p.bob, **window)
    assert _resolve(org, route(p), requester=p.alice) == ([(p.mark.pk, None, "route")], "")


@pytest.mark.parametrize("route", ROUTES)
def test_a_workflow_specific_delegation_applies_to_its_workflow_only(org, p, route):
    spec = route(p)
    step, version = _step(org, spec)
    other = make_flow(org, [spec])
    _delegate(org, p.mark, p.bob, workflow=other.definition)
    args = {"organization": org, "requester": p.alice, "data": {}, "distinct": False}
    kept, _ = routing.resolve_approvers(step, definition_id=version.definition_id, **args)
    moved, _ = routing.resolve_approvers(routing.steps_of(other)[0], definition_id=other.definition_id, **args)
    assert [(a.user, a.on_behalf_of) for a in kept] == [(p.mark, None)]
    assert [(a.user, a.on_behalf_of) for a in moved] == [(p.bob, p.mark)]


@pytest.mark.parametrize("route", ROUTES)
def test_the_most_recent_start_wins_workflow_specific_or_global(org, p, route):
    spec = route(p)
    step, version = _step(org, spec)
    _delegate(org, p.mark, p.bob, start=-3, workflow=version.definition)
    _delegate(org, p.mark, p.frank, start=-1)  # global, started later
    approvers, _ = routing.resolve_approvers(
        step, organization=org, requester=p.alice, data={}, definition_id=version.definition_id, distinct=False
    )
    assert [(a.user, a.on_behalf_of) for a in approvers] == [(p.frank, p.mark)]


@pytest.mark.parametrize("route", ROUTES)
def test_an_inactive_delegate_is_passed_over(org, p, route):
    _delegate(org, p.mark, p.bob, start=-1)
    _delegate(org, p.mark, p.frank, start=-3)
    User.objects.filter(pk=p.bob.pk).update(is_active=False)
    # the newest delegation has an inactive delegate: the one in force with an active one applies
    assert _resolve(org, route(p), requester=p.alice) == ([(p.frank.pk, p.mark.pk, "delegation")], "")
    User.objects.filter(pk=p.frank.pk).update(is_active=False)
    assert _resolve(org, route(p), requester=p.alice) == ([(p.mark.pk, None, "route")], "")


@pytest.mark.parametrize("route", ROUTES)
def test_a_delegate_who_is_the_requester_leaves_the_task_to_the_named_user(org, p, route):
    _delegate(org, p.mark, p.alice)
    assert _resolve(org, route(p), requester=p.alice) == ([(p.mark.pk, None, "route")], "")
    allowed = {**route(p), "allow_self_approval": True}
    assert _resolve(org, allowed, requester=p.alice) == ([(p.alice.pk, p.mark.pk, "delegation")], "")


@pytest.mark.parametrize("route", [_named_by_email, _named_by_id])
def test_the_requester_named_is_excluded_even_with_a_delegation(org, p, route):
    _delegate(org, p.mark, p.bob)
    assert _resolve(org, route(p), requester=p.mark) == (_admins(p), "requester_excluded")
    allowed = {**route(p), "allow_self_approval": True}
    assert _resolve(org, allowed, requester=p.mark) == ([(p.bob.pk, p.mark.pk, "delegation")], "")


@pytest.mark.parametrize("route", ROUTES)
def test_distinct_approvers(org, p, route):
    _delegate(org, p.mark, p.bob)
    # the named user decided an earlier stage: excluded, delegation or not
    got = _resolve(org, route(p), requester=p.alice, distinct=True, excluded={p.mark.pk})
    assert got == (_admins(p), "distinct_approvers")
    # the delegate decided an earlier stage: the named user keeps the task
    got = _resolve(org, route(p), requester=p.alice, distinct=True, excluded={p.bob.pk})
    assert got == ([(p.mark.pk, None, "route")], "")


def test_several_candidates_keep_the_general_path_and_each_approver_once(org, p, django_assert_num_queries):
    # a role names fiona and frank (by e-mail); fiona's delegate is frank: frank decides once, for fiona
    _delegate(org, p.fiona, p.frank)
    spec = {"stage": 1, "name": "Finance", "approver_type": "role", "approver_ref": "finance_approver"}
    step, version = _step(org, spec)
    args = {"organization": org, "requester": p.alice, "data": {}, "definition_id": version.definition_id}
    routing.resolve_approvers(step, distinct=False, **args)
    with django_assert_num_queries(2):  # the role's users, then their delegations
        approvers, reason = routing.resolve_approvers(step, distinct=False, **args)
    assert [(a.user, a.on_behalf_of, a.reason) for a in approvers] == [(p.frank, p.fiona, "delegation")]
    assert reason == ""


@pytest.mark.parametrize(
    "ref",
    [
        lambda p: p.mark.email.upper(),  # e-mails match case-insensitively
        lambda p: f"  {p.mark.email} ",
    ],
)
def test_the_named_user_by_email_forms(org, p, ref):
    _delegate(org, p.mark, p.bob)
    spec = {"stage": 1, "name": "Named", "approver_type": "user", "approver_ref": ref(p)}
    assert _resolve(org, spec, requester=p.alice) == ([(p.bob.pk, p.mark.pk, "delegation")], "")


def test_a_form_field_names_the_user_with_their_delegation(org, p):
    _delegate(org, p.mark, p.bob)
    spec = {"stage": 1, "name": "Named", "approver_type": "form_field", "approver_ref": "approver"}
    got = _resolve(org, spec, requester=p.alice, data={"approver": p.mark.email})
    assert got == ([(p.bob.pk, p.mark.pk, "delegation")], "")
    assert _resolve(org, spec, requester=p.alice, data={"approver": 3}) == (_admins(p), "no_approver_resolved")
    assert _resolve(org, spec, requester=p.alice, data={}) == (_admins(p), "no_approver_resolved")


def test_an_inactive_or_foreign_named_user_falls_back_to_the_admins(org, other_org, p):
    stranger = User.objects.create_user(email="stranger@other-test.test", password="x", organization=other_org)
    spec = {"stage": 1, "name": "Named", "approver_type": "user", "approver_ref": stranger.email}
    assert _resolve(org, spec, requester=p.alice) == (_admins(p), "no_approver_resolved")
    _delegate(org, p.mark, p.bob)
    User.objects.filter(pk=p.mark.pk).update(is_active=False)
    assert _resolve(org, _named_by_email(p), requester=p.alice) == (_admins(p), "no_approver_resolved")


def test_a_named_user_and_their_delegation_cost_one_statement(org, p, django_assert_num_queries):
    _delegate(org, p.mark, p.bob)
    step, version = _step(org, _named_by_email(p))
    args = {"organization": org, "requester": p.alice, "data": {}, "definition_id": version.definition_id}
    routing.resolve_approvers(step, distinct=False, **args)  # compiled once per process
    with django_assert_num_queries(1):
        approvers, _ = routing.resolve_approvers(step, distinct=False, **args)
    assert [(a.user, a.on_behalf_of) for a in approvers] == [(p.bob, p.mark)]
