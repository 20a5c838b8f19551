"""HTTP load generator: runs in its own process, talks HTTP/1.1 keep-alive over asyncio (h11).

    python bench/loadgen.py SPEC.json  ->  prints one JSON result on the last line

SPEC: {"base_url": "http://127.0.0.1:8100", "mode": "rate" | "saturate",
       "rate": ops per second (rate mode), "concurrency": connections, "duration": seconds,
       "ops": [{"method": "GET", "path": "/api/v1/auth/me/", "token": "...", "json": {...}}, ...],
       "cycle": true to reuse ``ops`` round-robin (reads), false to use each op once (decisions)}

``rate`` is an open-loop, constant-rate schedule: operation *i* is due at ``t0 + i / rate``
whatever happened to the previous ones, and its latency is measured from that due time, not
from when a connection became free. A slow server therefore shows up as latency (queueing
included) instead of silently lowering the offered load: no coordinated omission.
``saturate`` is closed-loop with ``concurrency`` workers, for the maximum rate.

The client is deliberately thin (h11 over raw streams, no client library layers) because on a
2-core machine every cycle it spends is taken from the server; its own CPU time is reported.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

import h11


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(latencies: list[float], statuses: Counter, elapsed: float, cpu: float, ok_statuses) -> dict:
    ok = sorted(lat for lat, status in latencies if status in ok_statuses)
    completed = sum(statuses.values())

    def ms(value):
        return None if value is None else round(value * 1000, 2)

    return {
        "completed": completed,
        "ok": len(ok),
        "errors": {str(k): v for k, v in statuses.items() if k not in ok_statuses},
        "elapsed_s": round(elapsed, 3),
        "throughput": round(len(ok) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": ms(percentile(ok, 50)),
        "p95_ms": ms(percentile(ok, 95)),
        "p99_ms": ms(percentile(ok, 99)),
        "max_ms": ms(ok[-1] if ok else None),
        "client_cpu_s": round(cpu, 2),
    }


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.conn: h11.Connection | None = None

    async def _open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.conn = h11.Connection(h11.CLIENT)

    async def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> int:
        for attempt in (1, 2):
            if self.conn is None or self.conn.our_state is not h11.IDLE:
                await self._open()
            try:
                return await self._roundtrip(method, path, headers, body)
            except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _roundtrip(self, method, path, headers, body) -> int:
        conn = self.conn
        all_headers = [("Host", f"{self.host}:{self.port}"), ("Content-Length", str(len(body))), *headers]
        data = conn.send(h11.Request(method=method, target=path, headers=all_headers))
        data += conn.send(h11.Data(data=body)) if body else b""
        data += conn.send(h11.EndOfMessage())
        self.writer.write(data)
        status = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("server closed the connection")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self.close()
        return status

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.conn = None


def encode(op: dict) -> tuple[str, str, list, bytes]:
    headers = [("Accept", "application/json")]
    if op.get("token"):
        headers.append(("Authorization", f"Bearer {op['token']}"))
    body = b""
    if "json" in op:
        body = json.dumps(op["json"]).encode()
        headers.append(("Content-Type", "application/json"))
    return op.get("method", "GET"), op["path"], headers, body


async def run(spec: dict) -> dict:
    url = urlsplit(spec["base_url"])
    ops = [encode(op) for op in spec["ops"]]
    cycle = spec.get("cycle", True)
    duration = float(spec["duration"])
    concurrency = int(spec.get("concurrency", 16))
    ok_statuses = set(spec.get("ok_statuses", [200, 201]))
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(concurrency):
        pool.put_nowait(Connection(url.hostname, url.port or 80))
    latencies: list[tuple[float, int]] = []
    statuses: Counter = Counter()

    async def one(index: int, due: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.request(*ops[index % len(ops)])
        except Exception as exc:  # noqa: BLE001 - a refused or dropped connection is a result, not a crash
            status = f"error:{type(exc).__name__}"
            conn.close()
        finally:
            pool.put_nowait(conn)
        latencies.append((time.perf_counter() - due, status))
        statuses[status] += 1

    limit = None if cycle else len(ops)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if spec["mode"] == "rate":
        rate = float(spec["rate"])
        total = int(rate * duration)
        total = min(total, limit) if limit is not None else total
        tasks = []
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    else:
        counter = iter(range(limit if limit is not None else 10**12))
        deadline = t0 + duration

        async def worker():
            for i in counter:
                if time.perf_counter() >= deadline:
                    return
                await one(i, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    result = summarize(latencies, statuses, elapsed, time.process_time() - cpu0, ok_statuses)
    result.update(mode=spec["mode"], concurrency=concurrency, offered_rate=spec.get("rate"))
    result["client_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def cli(run_spec) -> None:
    """``script SPEC.json``: run the coroutine function on the spec, print its result as one JSON line."""
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    print(json.dumps(asyncio.run(run_spec(spec))))


if __name__ == "__main__":
    cli(run)
