"""CPU per notification hand-off: ``notify_many`` in its own transaction, after-commit work included.

    DATABASE_URL=postgres://.../db REDIS_URL=redis://.../N .venv/bin/python bench/notify_cpu.py [N] [ROUNDS]

Production settings (DEBUG off, Redis as channel layer and Celery broker, nothing consuming the
queue). Each round: N transactions, each writing one notification with its e-mail delivery to
one recipient; after commit the push and the e-mail hand-off. The figure is the process CPU
(``time.process_time``: every thread, so the push loop and the e-mail dispatcher count) per
transaction, the dispatcher flushed inside the timed region. Migrates the database first; the
queued messages are deleted from the broker after each round (the database N is the caller's).
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standalone

standalone.setup("notify-cpu")

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from core import events  # noqa: E402
from core.testing import make_org, make_user  # noqa: E402
from notifications.models import EmailDelivery, Kind, Notification  # noqa: E402
from notifications.services import notify_many  # noqa: E402


def flush() -> None:
    drain = getattr(events, "flush_dispatch", None)
    if drain is not None:
        drain()


def one_round(user, n: int) -> float:
    started = time.process_time()
    for i in range(n):
        with transaction.atomic():
            notify_many([{"recipient": user, "kind": Kind.TASK_ASSIGNED, "title": f"Approve #{i}"}])
    flush()
    return (time.process_time() - started) / n * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    call_command("migrate", verbosity=0)
    from celery import current_app

    org = make_org(f"bench-{os.getpid()}")
    user = make_user(org, f"bench-{os.getpid()}@example.test")
    one_round(user, 50)  # warm-up: imports, connections, the push loop
    results = []
    for _ in range(rounds):
        results.append(one_round(user, n))
        with current_app.connection_for_write() as conn:
            conn.default_channel.client.delete("celery")
    EmailDelivery.objects.filter(organization=org).delete()
    Notification.objects.filter(organization=org).delete()
    window = getattr(settings, "EMAIL_DISPATCH_WINDOW_MS", None)
    print(
        f"{n} x notify_many per round, window={window}: CPU ms per transaction "
        f"{' '.join(f'{r:.3f}' for r in results)}; median {statistics.median(results):.3f}"
    )


if __name__ == "__main__":
    main()
