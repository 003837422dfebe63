"""The server's Prometheus metrics (``GET /metrics``), kept in a registry of their own.

Each server has its own :class:`prometheus_client.CollectorRegistry`, so several servers started
from one notebook do not share counts. With ``--workers N`` the workers write to a shared directory
(``prometheus_client``'s multiprocess mode) and ``/metrics`` reports the sum over all of them.

>>> m = Metrics()
>>> m.requests.labels(endpoint="/predict", status="200").inc()
>>> b"workbench_requests_total" in m.render()[0]
True
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "MULTIPROCESS_ENV"]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """Requests, errors, batch sizes, queue depth and latencies of one server."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        # In multiprocess mode the values live in files and a fresh registry collects them on each scrape.
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = Counter("workbench_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "status"], registry=registry)
        self.errors = Counter("workbench_errors", "Failed predictions, by kind (bad_request, input, "
                              "pipeline, output, queue_full, not_ready, timeout)", ["kind"], registry=registry)
        self.items = Counter("workbench_items", "Inputs run through the pipeline", registry=registry)
        self.batch_size = Histogram("workbench_batch_size", "Inputs per forward batch",
                                    buckets=_BATCH_BUCKETS, registry=registry)
        self.queue_depth = Gauge("workbench_queue_depth", "Inputs waiting for a batch",
                                 registry=registry, multiprocess_mode="livesum")
        self.in_progress = Gauge("workbench_requests_in_progress", "/predict requests received and not yet answered",
                                 registry=registry, multiprocess_mode="livesum")
        self.latency = Histogram("workbench_request_seconds", "Time from receiving a /predict request to answering it",
                                 buckets=_LATENCY_BUCKETS, registry=registry)
        self.batch_seconds = Histogram("workbench_batch_seconds", "Time to run one batch (all three stages)",
                                       buckets=_LATENCY_BUCKETS, registry=registry)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
