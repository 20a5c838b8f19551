"""CPU time used by the processes of a benchmark run, by group, from /proc (Linux).

A group's time is the sum over its live processes of their own time and that of the children
they have reaped, so a worker that exited (a recycled gunicorn worker, a closed PostgreSQL
backend) still counts: its time moved to its parent. Groups: each process session of the
topology (its servers are started in sessions of their own), PostgreSQL and Redis by name.
"""

from __future__ import annotations

import os
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def snapshot(sessions: dict[str, int]) -> dict[str, float]:
    """Seconds of CPU so far per group: ``sessions`` (name -> session id), ``postgres``, ``redis``."""
    by_session = {sid: name for name, sid in sessions.items()}
    out = dict.fromkeys([*sessions, "postgres", "redis"], 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        seconds = sum(int(x) for x in fields[11:15]) / HZ  # utime stime cutime cstime
        session = int(fields[3])
        if session in by_session:
            out[by_session[session]] += seconds
        elif comm == "postgres":
            out["postgres"] += seconds
        elif comm.startswith("redis-server"):
            out["redis"] += seconds
    return out


def per_operation_ms(before: dict[str, float], after: dict[str, float], operations: int) -> dict[str, float]:
    if not operations:
        return {}
    return {name: round((after[name] - before[name]) * 1000 / operations, 3) for name in before}
