"""Gauges read from the database when /metrics is scraped (platform-wide: operators, not tenants).

Each app declares the gauges of its own rows in ``<app>/gauges.py`` with ``@database_gauges``;
the collector finds those modules the way the admin finds ``admin.py`` (autodiscovery), so core
imports no app (docs/architecture.md, "Import contracts").

Each gauge is one grouped query over an indexed or small table, and the answer is kept for
``METRICS_DB_CACHE_SECONDS`` (default 15) per process, so several Prometheus servers or a
short scrape interval cost no more than one set of queries per period.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db.models import Count, Min, QuerySet
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from prometheus_client.core import GaugeMetricFamily

GaugeFunction = Callable[[dt.datetime], list[GaugeMetricFamily]]

_gauges: list[GaugeFunction] = []
_discovered = False
_cache: dict[str, object] = {"at": 0.0, "families": None}
_lock = threading.Lock()


def database_gauges(function: GaugeFunction) -> GaugeFunction:
    """Register ``function(now) -> [GaugeMetricFamily, ...]``, read at scrape time."""
    if function not in _gauges:
        _gauges.append(function)
    return function


def backlog_gauges(
    rows: QuerySet, *, now: dt.datetime, pending: str, failed: str, name: str, help: str, age_name: str, age_help: str
) -> list[GaugeMetricFamily]:
    """An outbox's backlog: ``name`` counts the ``pending`` and ``failed`` rows by status (0 for a status
    with none), ``age_name`` the age in seconds of the oldest pending row by ``created_at`` (0: none)."""
    counts = dict(rows.filter(status__in=[pending, failed]).values_list("status").annotate(n=Count("id")).order_by())
    by_status = GaugeMetricFamily(name, help, labels=["status"])
    for status in (pending, failed):
        by_status.add_metric([status], counts.get(status, 0))
    oldest = rows.filter(status=pending).aggregate(at=Min("created_at"))["at"]
    age = GaugeMetricFamily(age_name, age_help)
    age.add_metric([], (now - oldest).total_seconds() if oldest else 0)
    return [by_status, age]


def _families() -> list[GaugeMetricFamily]:
    global _discovered
    if not _discovered:
        autodiscover_modules("gauges")
        _discovered = True
    now = timezone.now()
    return [family for function in _gauges for family in function(now)]


class DatabaseCollector:
    def collect(self):
        ttl = getattr(settings, "METRICS_DB_CACHE_SECONDS", 15)
        with _lock:
            if _cache["families"] is None or time.monotonic() - _cache["at"] >= ttl:
                _cache["families"] = _families()
                _cache["at"] = time.monotonic()
            return list(_cache["families"])


def forget() -> None:
    """Drop the cached answer (tests)."""
    with _lock:
        _cache["families"] = None
