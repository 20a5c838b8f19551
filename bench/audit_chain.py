"""What the audit hash chain costs: per call, per decision-like transaction, and under contention.

    DEBUG=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/audit_chain.py [N] [THREADS]

Writes into the database it is pointed at (scratch chains and one scratch organization);
never point it at production. Figures from one run are in docs/audit.md.
"""

import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from auditlogs.services import audit_record  # noqa: E402
from organizations import services as org_services  # noqa: E402
from organizations.models import Department  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
CHANGES = {"decision": ["pending", "approved"], "comment": "Looks good to me", "amount": "1234.50"}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def decisions(dept_id, n, *, audit: bool, chain_org):
    """n decision-like transactions: one row update (the change), then (optionally) its audit row."""
    in_audit, commit, total = [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        atomic = transaction.atomic()
        atomic.__enter__()
        Department.objects.filter(pk=dept_id).update(name=f"bench-{dept_id}-{i}")
        t1 = time.perf_counter()
        if audit:
            audit_record(
                action="task.approved",
                organization=chain_org,
                target_type="approvals.approvaltask",
                target_id=str(i),
                target_repr=f"Task {i}",
                changes=CHANGES,
            )
        t2 = time.perf_counter()
        atomic.__exit__(None, None, None)
        t3 = time.perf_counter()
        in_audit.append(t2 - t1)
        commit.append(t3 - t2)
        total.append(t3 - t0)
    return in_audit, commit, total


def single_thread(org, dept):
    decisions(dept.pk, 100, audit=True, chain_org=uuid.uuid4())  # warm up
    base = decisions(dept.pk, N, audit=False, chain_org=None)
    chain = uuid.uuid4()
    with_audit = decisions(dept.pk, N, audit=True, chain_org=chain)
    b_total, a_in, a_commit, a_total = base[2], *with_audit
    print(f"single thread, {N} transactions each")
    print(f"  without audit: {N / sum(b_total):8.0f} tx/s   p50 {ms(pct(b_total, 0.5))}  p95 {ms(pct(b_total, 0.95))}")
    print(f"  with audit:    {N / sum(a_total):8.0f} tx/s   p50 {ms(pct(a_total, 0.5))}  p95 {ms(pct(a_total, 0.95))}")
    print(f"  audit_record call: p50 {ms(pct(a_in, 0.5))}  p95 {ms(pct(a_in, 0.95))}  mean {ms(statistics.mean(a_in))}")
    print(f"  commit after it:   p50 {ms(pct(a_commit, 0.5))}  p95 {ms(pct(a_commit, 0.95))}")
    hold = [x + y for x, y in zip(a_in, a_commit, strict=True)]
    print(
        f"  chain lock held (audit_record + commit, upper bound): p50 {ms(pct(hold, 0.5))}  p95 {ms(pct(hold, 0.95))}"
    )
    print(f"  cost per decision (p50 with - without): {ms(pct(a_total, 0.5) - pct(b_total, 0.5))}")


def concurrent(depts, *, same_chain: bool):
    per = max(1, N // THREADS)
    shared = uuid.uuid4()
    barrier = threading.Barrier(THREADS)
    latencies, lock = [], threading.Lock()

    def work(k):
        try:
            barrier.wait()
            chain = shared if same_chain else uuid.uuid4()
            _, _, total = decisions(depts[k].pk, per, audit=True, chain_org=chain)
            with lock:
                latencies.extend(total)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    label = "one organization (one chain)" if same_chain else f"{THREADS} organizations (own chains)"
    print(f"{THREADS} threads x {per} audited decisions, {label}:")
    print(f"  {THREADS * per / elapsed:8.0f} tx/s   p50 {ms(pct(latencies, 0.5))}  p95 {ms(pct(latencies, 0.95))}")
    if same_chain:
        from auditlogs.verify import verify_chain

        result = verify_chain(chain=str(shared))
        print(f"  chain verifies: {result['ok']} ({result['checked']} rows)")


def baseline_concurrent(depts):
    per = max(1, N // THREADS)
    barrier = threading.Barrier(THREADS)

    def work(k):
        try:
            barrier.wait()
            decisions(depts[k].pk, per, audit=False, chain_org=None)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{THREADS} threads x {per} decisions without audit: {THREADS * per / (time.perf_counter() - t0):8.0f} tx/s")


def main():
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    org = org_services.organization_create(name=slug, slug=slug)
    depts = [Department.objects.create(organization=org, name=f"bench-{k}") for k in range(THREADS)]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        sync = cursor.fetchone()[0]
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(",")[0]
    print(f"{version}, synchronous_commit={sync}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    single_thread(org, depts[0])
    baseline_concurrent(depts)
    concurrent(depts, same_chain=True)
    concurrent(depts, same_chain=False)


if __name__ == "__main__":
    main()
