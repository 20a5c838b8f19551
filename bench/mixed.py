"""The mixed load of ``make soak``: submits, approvals, inbox and notification reads, open loop, with
WebSockets open throughout.

    python bench/mixed.py SPEC.json  ->  prints one JSON result on the last line

SPEC: {"base_url", "ws_url", "rate": requests per second offered, "duration": seconds,
       "concurrency": connections, "ops": [{"kind", "method", "path", "token", "json"}, ...] (each used
       once, in order: run.py interleaves the kinds), "sockets": [access tokens]}

Requests go out on a constant schedule whatever the server does (request *i* is due at
``t0 + i / rate``) and latency runs from that due time, as in loadgen.py's rate mode: a slow server
shows as latency and queueing, never as a lower offered load (no coordinated omission). The sockets
connect before the first request, read the contract's first frame and then count the pushes they
receive; a socket closed before the end counts as an error.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from urllib.parse import urlsplit

import websockets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from loadgen import Connection, cli, encode, summarize

OK = {"submit": {201}, "approve": {200}, "inbox": {200}, "notifications": {200}}


async def run(spec: dict) -> dict:
    url = urlsplit(spec["base_url"])
    rate, duration = float(spec["rate"]), float(spec["duration"])
    ops = spec["ops"][: int(rate * duration)]
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(int(spec.get("concurrency", 64))):
        pool.put_nowait(Connection(url.hostname, url.port or 80))

    sockets = await asyncio.gather(
        *(websockets.connect(f"{spec['ws_url']}/ws/notifications/?token={t}", max_queue=None) for t in spec["sockets"])
    )
    for sock in sockets:
        first = json.loads(await sock.recv())
        assert first["type"] == "unread_count", first
    pushes: Counter = Counter()
    dropped = 0

    async def listen(sock):
        nonlocal dropped
        try:
            async for raw in sock:
                pushes[json.loads(raw).get("type", "?")] += 1
        except websockets.ConnectionClosed:
            pass
        dropped += 1  # the server ended the socket before we did

    listeners = [asyncio.create_task(listen(s)) for s in sockets]
    results: dict[str, list] = defaultdict(list)
    statuses: dict[str, Counter] = defaultdict(Counter)

    async def one(op: dict, due: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.request(*encode(op))
        except Exception as exc:  # noqa: BLE001 - a refused or dropped connection is a result, not a crash
            status = f"error:{type(exc).__name__}"
            conn.close()
        finally:
            pool.put_nowait(conn)
        results[op["kind"]].append((time.perf_counter() - due, status))
        statuses[op["kind"]][status] += 1

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    tasks = []
    for i, op in enumerate(ops):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(op, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)

    by_kind = {kind: summarize(rows, statuses[kind], elapsed, 0.0, OK[kind]) for kind, rows in results.items()}
    everything = [
        (latency, "ok" if status in OK[kind] else status) for kind, rows in results.items() for latency, status in rows
    ]
    overall = summarize(everything, Counter(status for _, status in everything), elapsed, cpu, {"ok"})
    return {
        **overall,
        "offered_rate": rate,
        "duration_s": duration,
        "by_kind": by_kind,
        "sockets": len(sockets),
        "sockets_dropped": dropped,
        "pushes": dict(pushes),
    }


if __name__ == "__main__":
    cli(run)
