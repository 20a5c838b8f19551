"""Concurrent writers (real threads, one connection each) still produce one linear, gap-free chain."""

import threading
import uuid

import pytest
from django.db import connection, transaction

from auditlogs.models import AuditChainHead, AuditLog
from auditlogs.services import audit_record
from auditlogs.verify import verify_chain
from core.testing import make_org
from organizations.models import Department

WRITERS = 24
PER_WRITER = 10


def run_writers(target, writers=WRITERS):
    barrier = threading.Barrier(writers)
    errors = []

    def worker(n):
        try:
            barrier.wait(timeout=30)
            target(n)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_one_org_make_one_linear_chain():
    org = make_org("race-org")
    before = AuditLog.objects.filter(chain=str(org.pk)).count()

    def write(n):
        for k in range(PER_WRITER):
            with transaction.atomic():  # a decision-like transaction: a change, then its audit row last
                dept = Department.objects.create(organization=org, name=f"D{n}-{k}")
                audit_record(action="department.created", organization=org, target=dept, changes={"n": n, "k": k})

    run_writers(write)
    rows = list(AuditLog.objects.filter(chain=str(org.pk)).order_by("sequence").values_list("sequence", "action"))
    total = before + WRITERS * PER_WRITER
    assert [s for s, _ in rows] == list(range(1, total + 1))
    assert sum(1 for _, a in rows if a == "department.created") == WRITERS * PER_WRITER
    result = verify_chain(organization=org)
    assert result["ok"], result
    assert result["checked"] == total
    assert AuditChainHead.objects.get(chain=str(org.pk)).sequence == total


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_writers_create_the_chain_head_once():
    org_id = uuid.uuid4()  # a chain nobody has written to yet: every writer races to create its head

    def write(n):
        with transaction.atomic():
            audit_record(action="test.first", organization=org_id, changes={"n": n})

    run_writers(write)
    assert AuditChainHead.objects.filter(chain=str(org_id)).count() == 1
    assert sorted(AuditLog.objects.filter(chain=str(org_id)).values_list("sequence", flat=True)) == list(
        range(1, WRITERS + 1)
    )
    assert verify_chain(chain=str(org_id))["ok"]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_writers_leave_no_gap():
    org = make_org("race-rollback")

    def write(n):
        try:
            with transaction.atomic():
                audit_record(action="test.maybe", organization=org, changes={"n": n})
                if n % 3 == 0:
                    raise RuntimeError("roll back after taking a sequence number")
        except RuntimeError:
            pass

    run_writers(write)
    result = verify_chain(organization=org)
    assert result["ok"], result
    kept = AuditLog.objects.filter(chain=str(org.pk), action="test.maybe").count()
    assert kept == sum(1 for n in range(WRITERS) if n % 3)


@pytest.mark.django_db(transaction=True)
def test_batched_and_single_writers_interleave_into_one_linear_chain():
    """``audit_records`` reserves a run of sequence numbers under the same head lock as single rows."""
    from django.test.utils import CaptureQueriesContext

    from auditlogs.services import audit_records

    org = make_org("batch-race-org")
    before = AuditLog.objects.filter(chain=str(org.pk)).count()
    platform = uuid.uuid4()  # a second chain in the same batch: locked in one order by everyone

    def write(n):
        for k in range(5):
            with transaction.atomic():
                if n % 2:
                    audit_record(action="single", organization=org, changes={"n": n, "k": k})
                else:
                    audit_records(
                        [
                            {"action": "batch", "organization": org, "changes": {"n": n, "k": k, "i": i}}
                            for i in range(3)
                        ]
                        + [{"action": "other-chain", "organization": platform, "changes": {"n": n}}]
                    )

    run_writers(write, writers=12)
    rows = list(AuditLog.objects.filter(chain=str(org.pk)).order_by("sequence").values_list("sequence", "action"))
    assert [s for s, _ in rows] == list(range(1, before + 6 * 5 + 6 * 5 * 3 + 1))
    assert verify_chain(organization=org)["ok"] and verify_chain(chain=str(platform))["ok"]

    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        logs = audit_records([{"action": "batch", "organization": org, "changes": {"i": i}} for i in range(10)])
    assert len(ctx.captured_queries) == 2  # bump-and-lock the head, insert the rows + store the head hash
    assert [log.sequence for log in logs] == list(range(rows[-1][0] + 1, rows[-1][0] + 11))
    assert all(log.id for log in logs) and logs[1].prev_hash == logs[0].hash
    assert verify_chain(organization=org)["ok"]
