"""core.write_batch on PostgreSQL: independent writes in one statement, a row never written twice in one."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.write_batch import WriteBatch
from organizations.models import Department

pytestmark = pytest.mark.django_db


def test_inserts_and_updates_go_in_one_statement(org):
    legal = Department.objects.create(organization=org, name="Legal")
    new = [Department(organization=org, name=f"D{i}") for i in range(3)]
    batch = WriteBatch()
    batch.insert(new)
    legal.name = "Legal & Compliance"
    batch.update(legal, ["name"])
    with CaptureQueriesContext(connection) as queries:
        batch.execute()
    assert len(queries) == 1
    assert set(Department.objects.filter(organization=org).values_list("name", flat=True)) == {
        "Legal & Compliance",
        "D0",
        "D1",
        "D2",
    }


def test_a_second_write_of_a_row_sends_the_first_before_it(org):
    dept = Department.objects.create(organization=org, name="A")
    batch = WriteBatch()
    dept.name = "B"
    batch.update(dept, ["name"])
    with CaptureQueriesContext(connection) as queries:
        dept.name = "C"
        batch.update(dept, ["name"])  # the first update is sent now: the last one wins, as in order
        batch.execute()
    assert len(queries) == 2
    dept.refresh_from_db()
    assert dept.name == "C"


def test_extend_and_execute_returning_send_the_writes_with_the_statement(org):
    deferred = WriteBatch()
    deferred.insert([Department(organization=org, name="Deferred")])
    batch = WriteBatch()
    batch.extend(deferred)
    assert len(deferred) == 0 and len(batch) == 1
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        row = batch.execute_returning("SELECT %s::text", ["answer"])
    assert row == ("answer",) and len(queries) == 1
    assert Department.objects.filter(organization=org, name="Deferred").exists()
