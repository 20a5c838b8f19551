"""The read replica (DATABASE_REPLICA_URL): reports, the audit export and audit verification read from it.

The replica here is a second alias on the test database (another connection, as a real replica
would be); committed data (transactional tests) is visible on both.
"""

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from approvals.reports import summary
from auditlogs.services import audit_record
from auditlogs.verify import verify_chain
from core.db_router import REPLICA, has_replica, read_alias, replica_reads
from core.testing import api_client, make_user

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


@pytest.fixture(scope="module", autouse=True)
def replica_alias(django_db_setup, django_db_blocker):
    """Module-scoped: the alias must exist before the test case checks its ``databases``."""
    config = {**connections["default"].settings_dict}
    settings.DATABASES[REPLICA] = config
    connections.settings[REPLICA] = config
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            connections[REPLICA].close()
        del connections[REPLICA]
        connections.settings.pop(REPLICA, None)  # (the same dict as settings.DATABASES)
        settings.DATABASES.pop(REPLICA, None)


@pytest.fixture
def replica():
    return connections[REPLICA]


def selects(captured) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "WITH", "DECLARE"))
    ]


def test_report_reads_go_to_the_replica(org, replica):
    assert has_replica() and read_alias() == REPLICA
    with CaptureQueriesContext(connections["default"]) as primary, CaptureQueriesContext(replica) as secondary:
        report = summary(organization=org)
    assert report["requests"]["total"] == 0
    assert len(selects(secondary)) >= 3 and not selects(primary)


def test_audit_verify_and_export_read_from_the_replica(org, replica):
    admin = make_user(org, "auditor@acme-test.test", roles=["org_admin"])
    for n in range(3):
        audit_record(action="test.event", organization=org, target_repr=f"event {n}")
    with CaptureQueriesContext(connections["default"]) as primary, CaptureQueriesContext(replica) as secondary:
        result = verify_chain(organization=org)
    assert result["ok"] and result["checked"] >= 3
    assert any("auditlogs_auditchainhead" in q for q in selects(secondary)) and not selects(primary)

    with CaptureQueriesContext(replica) as secondary:
        response = api_client(admin).get("/api/v1/audit-logs/export/?format=jsonl")
        assert response.status_code == 200
        lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) >= 3 and any("auditlogs_auditlog" in q for q in selects(secondary))
    # the export's own audit row is a write: on the primary
    assert verify_chain(organization=org)["checked"] == result["checked"] + 1


def test_writes_and_ordinary_reads_stay_on_the_primary(org, replica, requester):
    with CaptureQueriesContext(replica) as secondary:
        assert api_client(requester).get("/api/v1/requests/").status_code == 200
        with replica_reads():
            audit_record(action="test.write", organization=org)  # a write inside the block: still the primary
    assert not secondary.captured_queries
