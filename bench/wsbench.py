"""WebSocket delivery latency: N users connected to the live feed, notifications caused over REST.

    python bench/wsbench.py SPEC.json  ->  prints one JSON result on the last line

SPEC: {"ws_url", "base_url", "users": [{"user", "token", "reports": [tokens]}], "rate", "duration"}

Every user is a department head with an open socket; at a constant rate one of their reports
submits a purchase request over REST, which assigns the head a task and so pushes them a
``task_assigned`` notification. Latency is the socket's receive time minus the notification's
``created_at`` (stamped by the server inside the transaction, same machine clock): commit,
after-commit push, Redis channel layer, the ASGI server and the client included.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from datetime import datetime
from urllib.parse import urlsplit

import websockets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from loadgen import Connection, cli, encode, percentile


async def run(spec: dict) -> dict:
    users = spec["users"]
    latencies: list[float] = []
    kinds: Counter = Counter()
    t_connect = time.perf_counter()
    sockets = await asyncio.gather(
        *(websockets.connect(f"{spec['ws_url']}/ws/notifications/?token={u['token']}", max_queue=None) for u in users)
    )
    for sock in sockets:  # the contract's first frame
        first = json.loads(await sock.recv())
        assert first["type"] == "unread_count", first
    connect_s = time.perf_counter() - t_connect

    async def listen(sock):
        async for raw in sock:
            received = time.time()
            msg = json.loads(raw)
            if msg.get("type") != "notification":
                continue
            kinds[msg["notification"]["kind"]] += 1
            if msg["notification"]["kind"] == "task_assigned":
                created = datetime.fromisoformat(msg["notification"]["created_at"]).timestamp()
                latencies.append(received - created)

    listeners = [asyncio.create_task(listen(s)) for s in sockets]
    url = urlsplit(spec["base_url"])
    conns: asyncio.Queue = asyncio.Queue()
    for _ in range(8):
        conns.put_nowait(Connection(url.hostname, url.port))
    statuses: Counter = Counter()

    async def submit(i: int):
        user = users[i % len(users)]
        token = user["reports"][(i // len(users)) % len(user["reports"])]
        op = {
            "method": "POST",
            "path": "/api/v1/requests/",
            "token": token,
            "json": {
                "workflow": "purchase-request",
                "title": f"WS bench {i}",
                "submit": True,
                "data": {"amount": 300, "vendor": "WS bench"},
            },
        }
        conn = await conns.get()
        try:
            statuses[await conn.request(*encode(op))] += 1
        finally:
            conns.put_nowait(conn)

    rate, total = float(spec["rate"]), int(float(spec["rate"]) * float(spec["duration"]))
    t0 = time.perf_counter()
    pending = []
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(submit(i)))
    await asyncio.gather(*pending)
    deadline = time.perf_counter() + 10
    while len(latencies) < statuses[201] and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for task in listeners:
        task.cancel()
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    ordered = sorted(latencies)

    def ms(v):
        return None if v is None else round(v * 1000, 2)

    return {
        "connected": len(sockets),
        "connect_all_s": round(connect_s, 2),
        "submitted": statuses[201],
        "submit_errors": {str(k): v for k, v in statuses.items() if k != 201},
        "delivered": len(latencies),
        "rate": rate,
        "p50_ms": ms(percentile(ordered, 50)),
        "p95_ms": ms(percentile(ordered, 95)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1] if ordered else None),
    }


if __name__ == "__main__":
    cli(run)
