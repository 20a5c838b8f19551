"""GET requests/export/?format=csv|xlsx (issue 16.5): the list's filters, scoped, audited, streamed."""

import csv
import io
import zipfile

import pytest

from approvals.tests.test_engine import decide, open_task, submit
from auditlogs.models import AuditLog
from core.testing import api_client
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def export(user, query="format=csv"):
    r = api_client(user).get(f"/api/v1/requests/export/?{query}")
    body = b"".join(r.streaming_content) if r.status_code == 200 else r.content
    return r, body


def table(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.fixture
def world(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark)], key="buy")
    first = submit(p.alice, v, data={"amount": 100, "vendor": "=HYPERLINK(1)"}, title="Chairs")
    second = submit(p.alice, v, data={"amount": 7000, "vendor": "Dell"}, title="Laptop")
    assert decide(p.mark, open_task(second["id"])).status_code == 200
    submit(p.bob, v, data={"amount": 1, "vendor": "x"}, title="Bob's")  # not alice's to see
    return v, first, second


def test_csv_has_the_columns_scoped_rows_and_the_flattened_form(p, world):
    v, _, _ = world
    r, body = export(p.alice)
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert r["Content-Disposition"].startswith('attachment; filename="requests-')
    rows = table(body)
    assert [row["title"] for row in rows] == ["Chairs", "Laptop"]  # bob's request is not visible to alice
    chairs, laptop = rows
    assert chairs["workflow"] == "buy" and chairs["version"] == str(v.number)
    assert chairs["requester"] == p.alice.email and chairs["department"] == p.eng.name
    assert chairs["status"] == "pending" and chairs["decided"] == "" and chairs["cycle_hours"] == ""
    assert chairs["current_stage"] == "1" and chairs["current_approvers"] == p.mark.email
    assert chairs["sla_breached"] == "no"
    assert chairs["data.amount"] == "100" and chairs["data.vendor"] == "'=HYPERLINK(1)"  # defused
    assert laptop["status"] == "approved" and laptop["decided"] and laptop["current_approvers"] == ""
    assert float(laptop["cycle_hours"]) >= 0
    row = AuditLog.objects.get(action="requests.exported")
    assert row.actor_id == p.alice.pk and row.changes == {"format": "csv", "filters": {}}


def test_the_list_filters_apply_and_bad_input_is_400_without_an_audit_row(p, world):
    _, body = export(p.mark, "format=csv&status=approved")
    assert [row["title"] for row in table(body)] == ["Laptop"]
    _, body = export(p.admin, f"format=csv&requester={p.bob.pk}")
    assert [row["title"] for row in table(body)] == ["Bob's"]
    for query in ("format=pdf", "", "format=csv&status=hacked", "format=csv&decided_after=0000-01-01"):
        r, _ = export(p.alice, query)
        assert r.status_code == 400, query
    assert AuditLog.objects.filter(action="requests.exported").count() == 2


def test_xlsx_is_a_workbook_with_the_rows(p, world):
    r, body = export(p.alice, "format=xlsx&search=Laptop")
    assert r.status_code == 200 and r["Content-Type"].endswith("spreadsheetml.sheet")
    book = zipfile.ZipFile(io.BytesIO(body))
    text = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/") and n.endswith(".xml"))
    assert "Laptop" in text and "data.vendor" in text and "Chairs" not in text


def test_statements_do_not_grow_with_the_rows(org, p, django_assert_num_queries, django_assert_max_num_queries):
    v = make_flow(org, [user_step(1, "Manager", p.mark)], key="many")
    submit(p.alice, v)
    export(p.admin)  # the business calendar is cached after the first export
    with django_assert_max_num_queries(12) as one:  # 9 on PostgreSQL (savepoints differ by backend)
        export(p.admin)
    statements = len(one.captured_queries)
    for n in range(9):
        submit(p.alice, v, title=f"R{n}")
    with django_assert_num_queries(statements):
        _, body = export(p.admin)
    assert len(table(body)) == 10
