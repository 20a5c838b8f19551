"""Statements of audit-logs/export/ do not grow with the rows exported (1 row, then 10).

audit-logs/ itself: ``test_api.py::test_list_query_count_is_constant``."""

import pytest

from auditlogs.tests.factories import bulk_chain
from core.testing import api_client, make_user

pytestmark = pytest.mark.django_db

# The caller from the process's copy (warmed first: accounts/auth_cache.py); the export's own audit row
# (savepoint, chain head, insert, release); the rows through one server-side cursor (DECLARE; its
# FETCHes, one per 1,000 rows, are not counted by Django).
EXPORT = 5


def test_export(org, django_assert_num_queries):
    auditor = make_user(org, "auditor@acme-test.test", roles=["auditor"])
    client = api_client(auditor)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on

    def exported(action):
        response = client.get("/api/v1/audit-logs/export/", {"format": "jsonl", "action": action})
        assert response.status_code == 200
        return b"".join(response.streaming_content).decode().splitlines()

    bulk_chain(org, 1, action="one.row")
    with django_assert_num_queries(EXPORT):
        assert len(exported("one.row")) == 1
    bulk_chain(org, 10, action="ten.rows")
    with django_assert_num_queries(EXPORT):
        assert len(exported("ten.rows")) == 10
