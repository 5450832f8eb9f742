"""Optional Prometheus metrics of the model container (the original's ``clipper_mc_*`` set).

Only created when ``CLIPPER_METRICS_PORT`` is set; they live in their own registry so
that several runtimes in one test process never collide.
"""

from __future__ import annotations

import logging
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

__all__ = ["ContainerMetrics"]

logger = logging.getLogger(__name__)

_BUCKETS_MS: Final = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0)


class ContainerMetrics:
    """Counters and latency histograms, served over HTTP on ``port``."""

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:
        self.registry = CollectorRegistry()
        self._predictions = Counter(
            "clipper_mc_pred_total", "Prediction requests answered", registry=self.registry
        )
        self._recv_ms = self._histogram("clipper_mc_recv_time_ms", "Time receiving a request")
        self._parse_ms = self._histogram("clipper_mc_parse_time_ms", "Time decoding a request")
        self._handle_ms = self._histogram("clipper_mc_handle_time_ms", "Time in the model and reply")
        self._end_to_end_ms = self._histogram(
            "clipper_mc_end_to_end_latency_ms", "Receive + parse + handle time"
        )
        start_http_server(port, addr=host, registry=self.registry)
        logger.info("serving container metrics on %s:%d", host, port)

    def _histogram(self, name: str, doc: str) -> Histogram:
        return Histogram(name, doc, buckets=_BUCKETS_MS, registry=self.registry)

    def observe_prediction(self, recv_ms: float, parse_ms: float, handle_ms: float) -> None:
        self._predictions.inc()
        self._recv_ms.observe(recv_ms)
        self._parse_ms.observe(parse_ms)
        self._handle_ms.observe(handle_ms)
        self._end_to_end_ms.observe(recv_ms + parse_ms + handle_ms)
