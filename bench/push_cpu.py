"""CPU per after-commit WebSocket push: ``push_many`` of one message, each after its own commit.

    DATABASE_URL=postgres://.../db REDIS_URL=redis://.../N .venv/bin/python bench/push_cpu.py [N] [ROUNDS] [LAYER...]

Production settings (DEBUG off, Redis as channel layer). Each round runs, interleaved, every
layer named (default: all of ``LAYERS``) twice: the recipient's group empty (nobody connected)
and with one member (one socket open elsewhere; nothing drains it, its queue is deleted after
each round). A ``none`` pass (the same transactions, no push) is the floor the push adds to.
The figure is the process CPU (``time.process_time``: every thread, so the push loop counts)
per transaction; the median of the rounds is printed per layer.
"""

import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standalone

standalone.setup("push-cpu")

import redis  # noqa: E402
from channels.layers import channel_layers  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from core import events  # noqa: E402

LAYERS = {
    # channels-redis's own group_send (3-4 round trips): the production layer's before issue 14.
    "stock": "channels_redis.core.RedisChannelLayer",
    # The production layer: group_send as one EVALSHA.
    "production": "core.channel_layer.BlockingPoolRedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
PREFIX = f"pushbench-{uuid.uuid4().hex[:6]}"
MESSAGE = {
    "type": "notification.created",
    "notification": {
        "id": str(uuid.uuid4()),
        "kind": "task_assigned",
        "title": "Approve purchase request #1234",
        "body": "",
        "request": str(uuid.uuid4()),
        "created_at": "2026-12-02T17:00:00+00:00",
    },
}


def use_layer(backend: str | None) -> None:
    # Capacity above a round's sends: nothing drains the member's queue, and the over-capacity
    # path (a log line per push) is not what a connected socket costs.
    config = {"hosts": [settings.REDIS_URL], "prefix": PREFIX}
    if backend and "pubsub" not in backend:
        config["capacity"] = 100_000
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": config}} if backend else {}
    channel_layers.backends.clear()


def one_pass(n: int, group: str | None) -> float:
    started = time.process_time()
    for _ in range(n):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if group:
                events.push_many([(group, MESSAGE)])
    return (time.process_time() - started) / n * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    names = sys.argv[3:] or list(LAYERS)
    r = redis.Redis.from_url(settings.REDIS_URL)
    empty, joined = "user.offline", "user.online"
    channel = "specific.bench!member"
    results: dict[str, list[float]] = {}
    passes = [("none", None, None)] + [(f"{name}/{m}", name, m) for name in names for m in ("empty", "member")]
    for round_no in range(rounds + 1):  # round 0 warms up every layer (loop, pools, scripts)
        for label, name, members in passes:
            use_layer(LAYERS[name] if name else None)
            if name != "pubsub":
                r.zadd(f"{PREFIX}:group:{joined}", {channel: time.time()})
            cpu = one_pass(n, (joined if members == "member" else empty) if name else None)
            for key in r.scan_iter(f"{PREFIX}*"):
                r.delete(key)
            if round_no:
                results.setdefault(label, []).append(cpu)
    floor = statistics.median(results["none"])
    for label, values in results.items():
        med = statistics.median(values)
        print(f"{label:18} {' '.join(f'{v:.3f}' for v in values)}  median {med:.3f}  push {med - floor:+.3f} ms")


if __name__ == "__main__":
    main()
