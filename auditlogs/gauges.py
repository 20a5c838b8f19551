"""The audit chains' gauge at /metrics scrape time (core/metrics_db.py)."""

from prometheus_client.core import GaugeMetricFamily

from auditlogs.models import PLATFORM_CHAIN, AuditChainHead
from auditlogs.selectors import organizations_all
from core.metrics_db import database_gauges


@database_gauges
def audit_gauges(now) -> list[GaugeMetricFamily]:
    chains = GaugeMetricFamily("audit_chain_length", "Rows in each audit hash chain.", labels=["organization"])
    slugs = {str(pk): slug for pk, slug in organizations_all().values_list("pk", "slug")}
    for chain, sequence in AuditChainHead.objects.values_list("chain", "sequence"):
        chains.add_metric([PLATFORM_CHAIN if chain == PLATFORM_CHAIN else slugs.get(chain, chain)], sequence)
    return [chains]
