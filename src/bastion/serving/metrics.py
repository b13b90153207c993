"""Prometheus metrics of the gateway (one registry per gateway, served at ``/metrics``).

Example::

    m = GatewayMetrics()
    m.requests.labels("scoring", "ok").inc()
    text = m.render()          # the Prometheus text format
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("bastion_predict_requests", "prediction requests by outcome",
                                ["endpoint", "outcome"], registry=r)
        self.refusals = Counter("bastion_predict_refusals", "refused prediction requests",
                                ["endpoint", "reason"], registry=r)
        self.latency = Histogram(
            "bastion_predict_latency_seconds", "gateway latency of answered predictions",
            ["endpoint"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.batch_rows = Histogram(
            "bastion_worker_batch_rows", "rows per exchange with a worker (micro-batching)",
            registry=r, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.restarts = Counter("bastion_worker_restarts", "sandboxed worker restarts",
                                ["endpoint"], registry=r)
        self.ood_rows = Counter("bastion_predict_ood_rows",
                                "answered rows flagged out of the training distribution",
                                ["endpoint"], registry=r)
        self.adversarial = Counter(
            "bastion_predict_adversarial", "adversarial-query detector: principals suspected, "
            "requests refused by policy", ["endpoint", "event"], registry=r)
        self.serving = Gauge("bastion_endpoint_version", "model version in service",
                             ["endpoint", "model"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "GatewayMetrics"]
