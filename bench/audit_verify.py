"""How long verifying one organization's audit hash chain takes (issue 9 target: 10^6 rows in < 20 s).

    DEBUG=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/audit_verify.py \
        [--rows 1000000] [--repeat 1]

Seeds the chain of the scratch organization ``bench-audit`` with ``--rows`` rows (kept between
runs: a chain already that long is reused, a shorter one is topped up; rows are append-only, so
a longer one makes the script use ``bench-audit-<rows>`` instead), then times
``auditlogs.verify.verify_chain`` over it, the function behind ``manage.py audit_verify --org``
and ``GET /api/v1/audit-logs/verify/``. The last stdout line is one JSON object:

    {"scenario": "audit_verify", "rows": N, "seconds": s, "rows_per_s": r, "ok": true,
     "seed_seconds": s, "peak_rss_mb": m, ...}

``seconds`` is the fastest of ``--repeat`` runs (all are in ``runs``); ``cpu_seconds`` and
``db_cpu_seconds`` are that run's CPU time in this process and in its PostgreSQL backend (same
machine), the figures a shared box disturbs least. ``peak_rss_mb`` is
``getrusage`` ru_maxrss of the whole process (seeding included); ``verify_rss_growth_mb`` is
how far the verify alone raised the peak above where it started (Linux: the peak is reset
through /proc/self/clear_refs first), the figure that shows memory does not grow with N.
Exits 1 when the chain does not verify. Writes into the database it is pointed at; never
point it at production. Figures are in docs/audit.md.
"""

import argparse
import json
import os
import random
import resource
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import django
from standalone import backend_cpu_seconds

django.setup()

from django.db import connection, connections, router, transaction  # noqa: E402

from accounts.services import user_create  # noqa: E402
from auditlogs.chain import PAYLOAD_FIELDS, compute_hash, payload_from_values  # noqa: E402
from auditlogs.models import AuditChainHead, AuditLog  # noqa: E402
from auditlogs.services import log_values  # noqa: E402
from auditlogs.verify import chain_of, verify_chain  # noqa: E402
from core.context import RequestContext  # noqa: E402
from organizations.models import Organization  # noqa: E402
from organizations.services import organization_create  # noqa: E402

SLUG = "bench-audit"
ACTORS = 40
COPY_BATCH = 50_000  # rows per COPY statement; the whole seed is still one transaction
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "workflow-cli/1.4 httpx/0.28.1",
]
STEPS = ["Manager approval", "Finance review", "Director sign-off"]
COMMENTS = ["", "", "Looks good to me", "OK für mich, bitte Beleg nachreichen", "Budget ✓ — approved", "Fine."]
WORKFLOWS = [("purchase", "Purchase of"), ("travel", "Trip to"), ("leave", "Leave for")]


def rss_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory line (VmRSS, VmHWM) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def organization_for(rows: int):
    """The scratch organization whose chain holds at most ``rows`` rows (created with a few real audit rows)."""
    for slug in (SLUG, f"{SLUG}-{rows}"):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            org = organization_create(name=f"Bench audit ({slug})", slug=slug)
        head = AuditChainHead.objects.filter(chain=chain_of(org)).first()
        if head is None or head.sequence <= rows:
            return org
    raise SystemExit(f"organizations {SLUG} and {SLUG}-{rows} both hold more than {rows} audit rows")


def actors_of(org) -> list:
    """Real users of the organization (created through the service, so their user.created rows are real too)."""
    users = list(org.users.order_by("email"))
    for k in range(len(users), ACTORS):
        users.append(user_create(actor=None, organization=org, email=f"{org.slug}-user{k:02d}@bench.example"))
    return users[:ACTORS]


def events(org, actors, rng: random.Random):
    """Endless ``log_values`` keyword sets shaped like the approval flow's audit rows.

    See approvals/lifecycle/events.py."""
    contexts = [
        RequestContext(
            ip=f"203.0.113.{k + 1}" if k % 5 else f"2001:db8:0:{k:x}::1",
            user_agent=USER_AGENTS[k % len(USER_AGENTS)],
        )
        for k in range(len(actors))
    ]
    system = RequestContext()  # Celery jobs: no request, no ip
    number = 0
    while True:
        number += 1
        requester = rng.randrange(len(actors))
        key, prefix = WORKFLOWS[number % len(WORKFLOWS)]
        request_id = f"{rng.getrandbits(128):032x}"
        reference = f"{key[:3].upper()}-{number:07d}"
        request = {
            "target_type": "requests.request",
            "target_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "target_repr": f"{reference} {prefix} item {number} ({rng.randrange(10, 5000)} EUR)",
        }

        def ctx(k, rid=None):
            return RequestContext(
                request_id=rid or f"{rng.getrandbits(128):032x}", ip=contexts[k].ip, user_agent=contexts[k].user_agent
            )

        c = ctx(requester, request_id)
        yield {"action": "user.login", "actor": actors[requester], "target": actors[requester], "ctx": c}
        changes = {"reference": reference, "workflow": key, "version": 1 + number % 3}
        yield {"action": "request.created", "actor": actors[requester], "changes": changes, "ctx": c, **request}
        if rng.random() < 0.2:  # edited before submitting: the form data diff (numbers, dates, text)
            amount = round(rng.uniform(10, 5000), 2)
            before = {"amount": amount, "currency": "EUR", "needed_by": "2026-07-01", "quantity": 2}
            after = {**before, "amount": round(amount * 1.1, 2), "quantity": 3, "note": "inkl. Versand"}
            changes = {"data": [before, after]}
            yield {"action": "request.updated", "actor": actors[requester], "changes": changes, "ctx": c, **request}
        changes = {"status": ["draft", "pending"], "round": 1}
        yield {"action": "request.submitted", "actor": actors[requester], "changes": changes, "ctx": c, **request}
        final = "approved"
        for stage, step in enumerate(STEPS[: 1 + number % len(STEPS)], start=1):
            approver = (requester + stage) % len(actors)
            task = {
                "target_type": "approvals.approvaltask",
                "target_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "target_repr": f"{request['target_id']} stage {stage} {rng.randrange(1, 10**6)} (pending)",
            }
            changes = {
                "request": request["target_id"],
                "assignee": str(actors[approver].pk),
                "assignee_email": actors[approver].email,
                "on_behalf_of": None,
                "reason": "step approver",
            }
            yield {"action": "task.assigned", "actor": actors[requester], "changes": changes, "ctx": c, **task}
            if rng.random() < 0.1:
                changes = {"request": request["target_id"], "level": 0, "recipients": [changes["assignee"]]}
                yield {"action": "task.reminded", "actor": None, "changes": changes, "ctx": system, **task}
            decision = "rejected" if rng.random() < 0.08 else "approved"
            changes = {
                "request": request["target_id"],
                "step": step,
                "decision": decision,
                "comment": rng.choice(COMMENTS),
                "on_behalf_of": None,
                "system": False,
                "status": ["pending", decision],
                "outcome": "any_approved" if decision == "approved" else "rejected",
            }
            c = ctx(approver)
            yield {"action": f"task.{decision}", "actor": actors[approver], "changes": changes, "ctx": c, **task}
            if decision == "rejected":
                final = "rejected"
                break
        changes = {"status": ["pending", final], "round": 1}
        yield {"action": f"request.{final}", "actor": actors[approver], "changes": changes, "ctx": c, **request}


def seed(org, rows: int) -> tuple[int, float, float]:
    """Append rows until the chain holds ``rows``: (rows written, seconds writing them, seconds of VACUUM)."""
    t0 = time.perf_counter()
    chain = chain_of(org)
    actors = actors_of(org)
    rng = random.Random(9)
    columns = [*PAYLOAD_FIELDS, "prev_hash", "hash"]
    sql = f"COPY {AuditLog._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(chain=chain)  # organization_create made it
        sequence, prev_hash = head.sequence, head.hash
        todo = rows - sequence
        if todo <= 0:
            return 0, time.perf_counter() - t0, 0.0
        last = AuditLog.objects.filter(chain=chain).order_by("-sequence").values_list("created_at", flat=True).first()
        created_at = last
        stream = events(org, actors, rng)
        written = 0
        while written < todo:
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                for _ in range(min(COPY_BATCH, todo - written)):
                    values = log_values(organization=org, **next(stream))
                    sequence += 1
                    created_at += timedelta(microseconds=rng.randrange(1, 2000))  # never backwards, like the writer
                    values["sequence"], values["created_at"] = sequence, created_at
                    digest = compute_hash(prev_hash, payload_from_values(values))
                    values["changes"] = json.dumps(values["changes"])
                    copy.write_row([*(values[c] for c in PAYLOAD_FIELDS), prev_hash, digest])
                    prev_hash = digest
                    written += 1
        # The head table has no trigger (only auditlogs_auditlog is append-only): move it to the new tip.
        AuditChainHead.objects.filter(chain=chain).update(sequence=sequence, hash=prev_hash)
    t1 = time.perf_counter()
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load anyway; without it the first read also sets hint bits.
        cursor.execute(f"VACUUM (ANALYZE) {AuditLog._meta.db_table}")
    return written, t1 - t0, time.perf_counter() - t1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="verify runs (the fastest is reported)")
    args = parser.parse_args()
    if args.rows < 100:
        parser.error("--rows must be at least 100 (creating the organization and its users writes ~50 rows)")

    org = organization_for(args.rows)
    written, seed_seconds, vacuum_seconds = seed(org, args.rows)
    print(f"{org.slug}: seeded {written} rows in {seed_seconds:.1f} s, VACUUM {vacuum_seconds:.1f} s", file=sys.stderr)

    runs, cpu, db_cpu, growth, result = [], [], [], [], None
    for _ in range(args.repeat):
        reset = reset_peak_rss()
        start_rss = rss_mb("VmRSS")
        db0 = backend_cpu_seconds(connections[router.db_for_read(AuditLog)])
        c0, t0 = time.process_time(), time.perf_counter()
        result = verify_chain(organization=org)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        db1 = backend_cpu_seconds(connections[router.db_for_read(AuditLog)])
        db_cpu.append(None if db0 is None or db1 is None else db1 - db0)
        if reset and start_rss is not None:
            growth.append(rss_mb("VmHWM") - start_rss)
        print(f"verify: {result['checked']} rows in {runs[-1]:.2f} s, ok={result['ok']}", file=sys.stderr)
    seconds = min(runs)
    fastest = runs.index(seconds)
    ok = bool(result["ok"]) and result["checked"] == args.rows
    out = {
        "scenario": "audit_verify",
        "rows": args.rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(result["checked"] / seconds),
        "ok": ok,
        "seed_seconds": round(seed_seconds, 1),
        "seeded_rows": written,
        "vacuum_seconds": round(vacuum_seconds, 1),
        "checked": result["checked"],
        "runs": [round(s, 3) for s in runs],
        "cpu_seconds": round(cpu[fastest], 2),
        "db_cpu_seconds": None if db_cpu[fastest] is None else round(db_cpu[fastest], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "verify_rss_growth_mb": round(max(growth), 1) if growth else None,
        "load_avg": round(os.getloadavg()[0], 2),
    }
    if not ok:
        out["result"] = result
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
