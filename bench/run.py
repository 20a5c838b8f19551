"""One command for the benchmark suite (``make bench``); see docs/benchmarks.md.

    .venv/bin/python bench/run.py                 # every scenario, writes docs/benchmarks.md
    .venv/bin/python bench/run.py --serving       # also compare the REST servers
    .venv/bin/python bench/run.py --quick         # tiny sizes and 3 s runs: checks the harness works
    .venv/bin/python bench/run.py --soak 30       # 30 minutes at half the maximum approve rate
    .venv/bin/python bench/run.py --mixed 10      # 10 minutes of the mixed load (20 req/s, 50 sockets)
    .venv/bin/python bench/run.py --http-only     # the HTTP scenarios and their ratios to the ceiling
    .venv/bin/python bench/run.py --only sla,audit,ws   # just these scenarios (and their targets), no docs

It drops and re-creates the database ``BENCH_DATABASE`` (default ``workflow_bench``) on the
local PostgreSQL, migrates it, seeds it (bench/seed.py) and starts the production topology
(bench/topology.py). Load comes from separate processes (bench/loadgen.py, bench/wsbench.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proc_cpu
from topology import BIN, ROOT, Topology, bench_env

RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("BENCH_DATABASE", "workflow_bench")
DATABASE_URL = PG_ADMIN.rsplit("/", 1)[0] + "/" + DB_NAME
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PRODUCTION_WEB = "gunicorn-gthread"  # chosen by the serving comparison (docs/benchmarks.md)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def psql(sql: str, db: str = "postgres") -> str:
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    return subprocess.run(["psql", url, "-XAtqc", sql], check=True, capture_output=True, text=True).stdout.strip()


def python(script: str, *args: str, env: dict) -> dict:
    """Run a bench script in its own process; its last stdout line is its JSON result."""
    proc = subprocess.run(
        [str(BIN / "python"), str(ROOT / "bench" / script), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spec_run(script: str, spec: dict, env: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    try:
        return python(script, fh.name, env=env)
    finally:
        os.unlink(fh.name)


def fresh_database(env: dict) -> None:
    psql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
    subprocess.run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], check=True, capture_output=True)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    redis = subprocess.run(["redis-cli", "-u", REDIS_URL, "INFO", "server"], capture_output=True, text=True).stdout
    t0 = time.perf_counter()
    total = 0
    for i in range(10**7):  # a CPU yardstick: ~0.5 s on a current desktop core
        total += i
    return {
        "python_loop_1e7_s": round(time.perf_counter() - t0, 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": psql("SHOW server_version"),
        "redis": next((x.split(":")[1] for x in redis.splitlines() if x.startswith("redis_version")), "?"),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }


# --- the operations each HTTP scenario sends -------------------------------------------------------
def ops_for(name: str, plan: dict) -> tuple[list[dict], bool]:
    """(operations, cycle): reads cycle through their list, decisions use each target once."""
    if name == "ceiling":  # bench/ceiling_urls.py: the framework path with nothing behind it
        return [{"path": "/bench/ceiling/", "token": t} for t in plan["me"]], True
    if name == "auth_me":
        return [{"path": "/api/v1/auth/me/", "token": t} for t in plan["me"]], True
    if name == "submit":
        return [
            {
                "method": "POST",
                "path": "/api/v1/requests/",
                "token": s["token"],
                "json": {"workflow": "purchase-request", "title": "Bench submit", "data": s["data"], "submit": True},
            }
            for s in plan["submit"]
        ], True
    if name == "approve":
        ops = [
            {"method": "POST", "path": f"/api/v1/tasks/{a['task']}/approve/", "token": a["token"], "json": {}}
            for a in plan["approve"][plan["approve_used"] :]
        ]
        return ops, False
    if name == "inbox":
        return [{"path": "/api/v1/tasks/", "token": t} for t in plan["inbox"]], True
    if name == "requests_list_requester":
        return [{"path": "/api/v1/requests/?mine=true", "token": t} for t in plan["list_requester"]], True
    if name == "requests_list_admin":
        return [{"path": "/api/v1/requests/", "token": plan["list_admin"]}], True
    raise KeyError(name)


def http_scenario(name: str, plan: dict, topo: Topology, env: dict, *, duration: float, concurrency: int) -> dict:
    """Maximum rate (closed loop), then latency at half of it (open loop, constant rate)."""
    ops, cycle = ops_for(name, plan)
    base = {"base_url": topo.web_url, "ops": ops, "cycle": cycle, "duration": duration, "concurrency": concurrency}
    cpu_before = proc_cpu.snapshot(topo.sessions())
    sat = spec_run("loadgen.py", {**base, "mode": "saturate"}, env)
    # where the CPU of an operation went at the maximum rate (the load generator's from itself)
    sat["cpu_ms_per_op"] = {
        **proc_cpu.per_operation_ms(cpu_before, proc_cpu.snapshot(topo.sessions()), sat["ok"]),
        "loadgen": round(sat["client_cpu_s"] * 1000 / sat["ok"], 3) if sat["ok"] else None,
    }
    if not cycle:
        plan["approve_used"] += sat["completed"]
        ops, _ = ops_for(name, plan)
    half = max(1.0, round(sat["throughput"] / 2, 1))
    rate = spec_run("loadgen.py", {**base, "ops": ops, "mode": "rate", "rate": half}, env)
    if not cycle:
        plan["approve_used"] += rate["completed"]
    log(
        f"{name}: max {sat['throughput']}/s (p99 {sat['p99_ms']} ms); at {half}/s: "
        f"p50 {rate['p50_ms']} p95 {rate['p95_ms']} p99 {rate['p99_ms']} ms, errors {rate['errors'] or 0}; "
        f"CPU ms per operation at the max: {sat['cpu_ms_per_op']}"
    )
    return {"max": sat, "half": rate}


def pgbench(duration: int) -> dict:
    url = DATABASE_URL
    subprocess.run(["pgbench", "-i", "-q", "-s", "10", url], check=True, capture_output=True)
    out = subprocess.run(
        ["pgbench", "-N", "-c", "8", "-j", "2", "-T", str(duration), url], check=True, capture_output=True, text=True
    ).stdout
    tps = next(float(line.split("=")[1].split()[0]) for line in out.splitlines() if line.startswith("tps"))
    latency = next(
        (float(line.split("=")[1].split()[0]) for line in out.splitlines() if "latency average" in line), None
    )
    psql("DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers", DB_NAME)
    log(f"pgbench -N: {tps:.0f} TPS")
    return {"tps": round(tps, 1), "latency_avg_ms": latency, "clients": 8, "scale": 10, "duration_s": duration}


HTTP_SCENARIOS = ("ceiling", "auth_me", "submit", "approve", "inbox", "requests_list_requester", "requests_list_admin")


def http_targets(s: dict) -> list[tuple]:
    """Issue 14's ratios of the framework path: (label, value, limit, op)."""
    rate = {name: s[name]["max"]["throughput"] for name in ("ceiling", "auth_me", "approve", "submit", "inbox")}
    rows = [
        ("auth/me req/s ≥ 0.5 × ceiling (bare JsonResponse)", rate["auth_me"] / rate["ceiling"], 0.5, "≥"),
        ("approve/s ≥ 0.25 × auth/me req/s", rate["approve"] / rate["auth_me"], 0.25, "≥"),
        ("create+submit/s ≥ approve/s", rate["submit"] / rate["approve"], 1.0, "≥"),
        ("inbox req/s ≥ 0.5 × auth/me req/s", rate["inbox"] / rate["auth_me"], 0.5, "≥"),
    ]
    for name in ("auth_me", "approve", "submit", "inbox"):
        rows.append((f"p99 {name} at half max rate < 100 ms", s[name]["half"]["p99_ms"], 100, "<"))
    return rows


def targets(r: dict) -> list[dict]:
    """The targets of the scenarios that ran (``--http-only`` and ``--only`` run a subset)."""
    s = r["scenarios"]
    rows = []
    if "pgbench" in s:
        approve = s["approve"]["max"]["throughput"]
        rows += [
            ("approve/s ≥ 0.5 × auth/me req/s", approve / s["auth_me"]["max"]["throughput"], 0.5, "≥"),
            ("approve/s ≥ 0.10 × pgbench TPS", approve / s["pgbench"]["tps"], 0.10, "≥"),
            ("p99 approve at half max rate < 150 ms", s["approve"]["half"]["p99_ms"], 150, "<"),
        ]
    if "ws" in s:
        rows.append(("WebSocket delivery p95 < 200 ms", s["ws"]["p95_ms"], 200, "<"))
    if "sla_scan" in s:
        rows.append(("SLA scan of 10k due among 100k pending < 30 s", s["sla_scan"]["seconds"], 30, "<"))
    if "audit_verify" in s:
        rows.append(("audit verify of 10^6 rows < 20 s", s["audit_verify"]["seconds"], 20, "<"))
    return _judge(rows + (http_targets(s) if "ceiling" in s else []))


def _judge(rows: list[tuple]) -> list[dict]:
    out = []
    for label, value, limit, op in rows:
        met = value is not None and (value >= limit if op == "≥" else value < limit)
        out.append({"target": label, "value": round(value, 3) if value is not None else None, "met": met})
    return out


def load_average() -> list[float]:
    """The 1/5/15-minute load average: the box is shared, so each figure says what else ran."""
    return [round(x, 2) for x in os.getloadavg()]


ONLY = ("ws", "sla", "audit")  # the scenarios ``--only`` can pick


def run_all(args) -> dict:
    duration = 3 if args.quick else args.duration
    only = set(args.only)  # empty: every scenario
    env = bench_env(DATABASE_URL, REDIS_URL)
    log(f"fresh database {DB_NAME}")
    fresh_database(env)
    result = {"web": args.web, "duration_s": duration, "scenarios": {}}
    s = result["scenarios"]
    if not only or "ws" in only:  # the SLA scan and the audit verify seed organizations of their own
        plan_path = RESULTS / "plan.json"
        sizes = ["--users", "60", "--departments", "6", "--pool", "1500"] if args.quick else ["--pool", str(args.pool)]
        log("seeding (bench/seed.py)")
        result["seed"] = python("seed.py", str(plan_path), *sizes, env=env)
        plan = json.loads(plan_path.read_text())
        plan["approve_used"] = 0
    result["machine"] = machine()
    if args.serving and not only:
        result["serving"] = compare_serving(plan, env, duration=duration)
    if not only or "ws" in only:
        with Topology(web=args.web, env=env, log_dir=RESULTS / "logs", with_ws=not args.http_only) as topo:
            if not only:
                for name in HTTP_SCENARIOS:
                    s[name] = http_scenario(name, plan, topo, env, duration=duration, concurrency=args.concurrency)
            if args.http_only:
                result["targets"] = targets(result)
                return result
            ws_spec = {
                "ws_url": topo.ws_url,
                "base_url": topo.web_url,
                "users": plan["ws"],
                "rate": 5 if args.quick else 20,
                "duration": duration,
            }
            load = load_average()
            s["ws"] = {**spec_run("wsbench.py", ws_spec, env), "load_average_before": load}
            log(f"ws: {s['ws']['connected']} sockets, p50 {s['ws']['p50_ms']} p95 {s['ws']['p95_ms']} ms (load {load})")
            result["server_rss_mb"] = {name: topo.rss_mb(name) for name in topo.procs}
    # Background jobs and the reference run with the servers stopped, so they measure themselves.
    if (not only or "sla" in only) and (ROOT / "bench" / "sla_scan.py").exists():
        sla_args = ["--pending", "2000", "--due", "200"] if args.quick else []
        load = load_average()
        s["sla_scan"] = {**python("sla_scan.py", *sla_args, env=env), "load_average_before": load}
        log(f"sla_scan: {s['sla_scan']}")
    if (not only or "audit" in only) and (ROOT / "bench" / "audit_verify.py").exists():
        load = load_average()
        rows = "20000" if args.quick else "1000000"
        s["audit_verify"] = {**python("audit_verify.py", "--rows", rows, env=env), "load_average_before": load}
        log(f"audit_verify: {s['audit_verify']}")
    if not only:
        s["pgbench"] = pgbench(5 if args.quick else 20)
    result["targets"] = targets(result)
    return result


def compare_serving(plan: dict, env: dict, *, duration: float) -> dict:
    from topology import WEB_SERVERS

    out = {}
    for web in WEB_SERVERS:
        log(f"serving: {web}")
        with Topology(web=web, env=env, log_dir=RESULTS / "logs", with_ws=False) as topo:
            out[web] = {
                name: http_scenario(name, plan, topo, env, duration=duration, concurrency=16)
                for name in ("auth_me", "approve")
            }
            out[web]["rss_mb"] = topo.rss_mb("web")
    return out


# The mixed load: per 10 requests 3 inbox reads, 3 notification reads, 2 submits, 2 approvals.
MIX = ("inbox", "notifications", "submit", "approve", "inbox", "notifications", "submit", "approve", "inbox",
       "notifications")  # fmt: skip
MIXED_RATE, MIXED_SOCKETS = 20.0, 50


def mixed_ops(plan: dict, total: int) -> list[dict]:
    """``total`` operations of the mix. Submits come from the reports of the socket holders, so the open
    sockets receive pushes; approvals use pool tasks once each; notifications are read by socket holders."""
    heads = plan["ws"][:MIXED_SOCKETS]
    approvals = iter(plan["approve"][plan["approve_used"] :])
    ops, n = [], Counter()
    for i in range(total):
        kind = MIX[i % len(MIX)]
        k = n[kind]
        n[kind] += 1
        if kind == "inbox":
            op = {"path": "/api/v1/tasks/", "token": plan["inbox"][k % len(plan["inbox"])]}
        elif kind == "notifications":
            op = {"path": "/api/v1/notifications/", "token": heads[k % len(heads)]["token"]}
        elif kind == "submit":
            head = heads[k % len(heads)]
            op = {
                "method": "POST",
                "path": "/api/v1/requests/",
                "token": head["reports"][(k // len(heads)) % len(head["reports"])],
                "json": {"workflow": "purchase-request", "title": f"Mixed {k}", "submit": True,
                         "data": {"amount": 300, "vendor": "Mixed load"}},
            }  # fmt: skip
        else:
            a = next(approvals)
            op = {"method": "POST", "path": f"/api/v1/tasks/{a['task']}/approve/", "token": a["token"], "json": {}}
        ops.append({"kind": kind, **op})
    plan["approve_used"] += n["approve"]
    return ops


def mixed(minutes: float, plan: dict, topo: Topology, env: dict) -> dict:
    total = int(MIXED_RATE * 60 * minutes)
    spec = {
        "base_url": topo.web_url,
        "ws_url": topo.ws_url,
        "rate": MIXED_RATE,
        "duration": 60 * minutes,
        "concurrency": 64,
        "ops": mixed_ops(plan, total),
        "sockets": [h["token"] for h in plan["ws"][:MIXED_SOCKETS]],
    }
    r = spec_run("mixed.py", spec, env)
    r.update(web_rss_mb=topo.rss_mb("web"), ws_rss_mb=topo.rss_mb("ws"), worker_rss_mb=topo.rss_mb("worker"))
    log(
        f"mixed: offered {MIXED_RATE}/s, done {r['throughput']}/s, p50 {r['p50_ms']} p99 {r['p99_ms']} ms, "
        f"errors {sum(r['errors'].values())}, sockets {r['sockets']} ({r['sockets_dropped']} dropped)"
    )
    return r


def soak(args) -> dict:
    """``--soak`` minutes of approvals at half the maximum rate, in one-minute windows (drift and memory),
    then ``--mixed`` minutes of the mixed load."""
    env = bench_env(DATABASE_URL, REDIS_URL)
    fresh_database(env)
    plan_path = RESULTS / "plan.json"
    python("seed.py", str(plan_path), "--pool", str(args.pool), env=env)
    plan = json.loads(plan_path.read_text())
    plan["approve_used"] = 0
    windows = []
    with Topology(web=args.web, env=env, log_dir=RESULTS / "logs") as topo:
        top, rate = None, 0.0
        if args.soak:
            ops, _ = ops_for("approve", plan)
            top = spec_run(
                "loadgen.py",
                {
                    "base_url": topo.web_url,
                    "ops": ops,
                    "cycle": False,
                    "duration": 15,
                    "concurrency": 16,
                    "mode": "saturate",
                },
                env,
            )
            plan["approve_used"] += top["completed"]
            rate = max(1.0, round(top["throughput"] / 2, 1))
        mixed_approvals = int(MIXED_RATE * 60 * args.mixed * MIX.count("approve") / len(MIX))
        needed = int(rate * 60 * args.soak) + mixed_approvals + 1000 - (len(plan["approve"]) - plan["approve_used"])
        if needed > 0:
            log(f"soak: extending the pool by {needed}")
            python("seed.py", str(plan_path), "--extend", str(needed), env=env)
            used = plan["approve_used"]
            plan = json.loads(plan_path.read_text())
            plan["approve_used"] = used
        if args.soak:
            log(f"soak: max {top['throughput']}/s, running {args.soak} min at {rate}/s")
        for minute in range(int(args.soak)):
            ops, _ = ops_for("approve", plan)
            spec = {"base_url": topo.web_url, "ops": ops, "cycle": False, "duration": 60, "concurrency": 16}
            r = spec_run("loadgen.py", {**spec, "mode": "rate", "rate": rate}, env)
            plan["approve_used"] += r["completed"]
            r.update(minute=minute + 1, web_rss_mb=topo.rss_mb("web"), worker_rss_mb=topo.rss_mb("worker"))
            windows.append(r)
            log(f"soak minute {minute + 1}: {r['throughput']}/s p99 {r['p99_ms']} ms web RSS {r['web_rss_mb']} MB")
        mixed_result = mixed(args.mixed, plan, topo, env) if args.mixed else None
    if not args.soak:
        return {"machine": machine(), "mixed": mixed_result}
    first, last = windows[: max(1, len(windows) // 6)], windows[-max(1, len(windows) // 6) :]

    def mean(rows, key):
        values = [row[key] for row in rows if row[key] is not None]
        return round(sum(values) / len(values), 2) if values else None

    return {
        "machine": machine(),
        "minutes": args.soak,
        "max_rate": top["throughput"],
        "rate": rate,
        "windows": windows,
        "throughput_first_last": [mean(first, "throughput"), mean(last, "throughput")],
        "p99_first_last_ms": [mean(first, "p99_ms"), mean(last, "p99_ms")],
        "web_rss_first_last_mb": [windows[0]["web_rss_mb"], windows[-1]["web_rss_mb"]],
        "worker_rss_first_last_mb": [windows[0]["worker_rss_mb"], windows[-1]["worker_rss_mb"]],
        "errors": sum(sum(w["errors"].values()) for w in windows),
        "mixed": mixed_result,
    }


def main() -> None:
    # A TERM (timeout, Ctrl-C from make) unwinds the ``with Topology`` blocks: no stray servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serving", action="store_true", help="also compare REST servers")
    parser.add_argument("--web", default=PRODUCTION_WEB)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pool", type=int, default=30000)
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--http-only", action="store_true", help="only the HTTP scenarios (with the ceiling); implies --no-docs"
    )
    parser.add_argument("--soak", type=float, default=0, help="minutes of the soak (instead of the suite)")
    parser.add_argument("--mixed", type=float, default=0, help="minutes of the mixed load (after the soak)")
    parser.add_argument("--load", default="", help="what else ran on the machine, for the report")
    parser.add_argument(
        "--only",
        type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
        default=[],
        help=f"only these of {','.join(ONLY)} (comma-separated); implies --no-docs",
    )
    args = parser.parse_args()
    if unknown := set(args.only) - set(ONLY):
        parser.error(f"--only: unknown {', '.join(sorted(unknown))} (choose from {', '.join(ONLY)})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.soak or args.mixed:
        result = soak(args)
        if result["mixed"]:
            result["mixed"].update(machine=result["machine"], minutes=args.mixed, load=args.load or None)
            (RESULTS / "mixed.json").write_text(json.dumps(result["mixed"], indent=2))
        if args.soak:
            (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
            log(
                f"soak: throughput {result['throughput_first_last']}/s, p99 {result['p99_first_last_ms']} ms, "
                f"web RSS {result['web_rss_first_last_mb']} MB (first -> last), errors {result['errors']}"
            )
        if not args.no_docs:
            from report import write_mixed, write_soak

            if args.soak:
                write_soak(result)
            if result["mixed"]:
                write_mixed(result["mixed"])
        return
    result = run_all(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    # latest.json is what bench/report.py renders: only a run of the whole suite replaces it
    paths = [RESULTS / f"{stamp}-only-{'-'.join(args.only)}.json"] if args.only else []
    for path in paths or (RESULTS / f"{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(result, indent=2))
    if not (args.no_docs or args.http_only or args.only):
        from report import write_docs

        write_docs(result)
    for t in result["targets"]:
        log(f"{'MET ' if t['met'] else 'MISS'} {t['target']}: {t['value']}")


if __name__ == "__main__":
    main()
