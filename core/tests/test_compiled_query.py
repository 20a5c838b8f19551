"""core.compiled_query: the compiled SQL answers what the queryset answers, for any values."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from core.compiled_query import CompiledQuery
from core.testing import make_user

pytestmark = pytest.mark.django_db


def _by_email():
    return CompiledQuery(
        lambda organization_id, email: (
            User.objects.filter(organization_id=organization_id, email__iexact=email)
            .select_related("organization")
            .order_by("pk")[:1]
        )
    )


def test_the_same_rows_as_the_queryset_with_new_values_in_one_statement(org, other_org, django_assert_num_queries):
    query = _by_email()
    a = make_user(org, "first_one@acme.test")
    b = make_user(org, "second%two@acme.test")
    make_user(other_org, "first_one@other.test")
    assert query.fetch(organization_id=org.pk, email="FIRST_ONE@acme.test") == [a]  # compiles
    with django_assert_num_queries(1):
        found = query.fetch(organization_id=org.pk, email="Second%Two@ACME.test")
        assert found == [b]
        assert found[0].organization.slug == org.slug  # select_related came with the row
    # characters a LIKE would treat as wildcards are matched literally, as by the ORM
    assert query.fetch(organization_id=org.pk, email="first%one@acme.test") == []
    assert query.fetch(organization_id=other_org.pk, email="second%two@acme.test") == []


def test_lists_datetimes_and_converters(org):
    users = [make_user(org) for _ in range(3)]
    query = CompiledQuery(lambda ids, after: User.objects.filter(pk__in=ids, date_joined__gt=after).order_by("email"))
    long_ago = timezone.now() - timedelta(days=1)
    assert query.fetch(ids=[users[0].pk], after=long_ago) == [users[0]]
    assert query.fetch(ids=[u.pk for u in users], after=long_ago) == sorted(users, key=lambda u: u.email)
    assert query.fetch(ids=[users[1].pk], after=timezone.now() + timedelta(days=1)) == []
    fetched = query.fetch(ids=[users[2].pk], after=long_ago)[0]
    assert fetched.date_joined == users[2].date_joined and fetched.pk == users[2].pk  # typed by the converters


def test_a_value_the_orm_transforms_is_not_compiled_and_still_answers(org):
    # icontains wraps the value in %...%: the marker is not found as itself, the queryset runs
    user = make_user(org, "needle_x@acme.test")
    make_user(org, "needlex@acme.test")
    query = CompiledQuery(lambda part: User.objects.filter(email__icontains=part).order_by("email"))
    assert query.fetch(part="LE_X") == [user]
    assert query.fetch(part="le_x@") == [user]
    assert list(query._shapes.values()) == [None]


def test_values_rows_and_pages(org, other_org, django_assert_num_queries):
    users = sorted((make_user(org) for _ in range(5)), key=lambda u: u.email)
    make_user(other_org)
    query = CompiledQuery(
        lambda organization_id: (
            User.objects.filter(organization_id=organization_id).values("id", "email").order_by("email")
        )
    )
    everything = [{"id": u.pk, "email": u.email} for u in users]
    assert query.fetch(organization_id=org.pk) == everything  # compiles
    with django_assert_num_queries(1):
        assert query.fetch_page(1, 2, organization_id=org.pk) == everything[1:3]
    assert query.fetch_page(4, 2, organization_id=org.pk) == everything[4:]
    assert query.fetch_page(9, 2, organization_id=org.pk) == []
    assert len(query.fetch_page(0, 10, organization_id=other_org.pk)) == 1
    assert all(compiled is not None for compiled in query._shapes.values())
