"""The webhook receiver's Prometheus metrics, served on its ``/metrics``: deliveries by result and
the time to each answer.

``result`` is ``stored`` (a 200 that stored something new), ``duplicate`` (a 200 for stories
stored before), ``empty`` (a 200 with nothing to store) or the reason a delivery was refused:
``too_large`` (413), ``signature`` (403), ``malformed`` (400), ``unavailable`` (503).
"""

from __future__ import annotations

from .metrics import require

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a delivery is answered once durable (an fsync, a group commit), so milliseconds to a second."""


class ReceiverMetrics:
    def __init__(self, registry=None):
        require()
        from prometheus_client import CollectorRegistry, Counter, Histogram
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.deliveries = Counter("harvester_webhook_deliveries", "Deliveries answered, by result",
                                  ["result"], registry=self.registry)
        self.latency = Histogram("harvester_webhook_delivery_latency_seconds",
                                 "Seconds from a delivery's arrival to its answer", buckets=LATENCY_BUCKETS,
                                 registry=self.registry)

    def answered(self, result: str, seconds: float) -> None:
        self.deliveries.labels(result).inc()
        self.latency.observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text Prometheus scrapes, and its content type."""
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
