"""Read the query frontend's /metrics while a load runs: batch sizes and queue lengths over time.

Prometheus text is preferred (histogram ``_sum``/``_count`` give the exact mean batch size per
sampling interval); the original's JSON report (``model:<name>:<version>:batch_size`` reservoir
histograms) is the fallback. Metric names are matched loosely so the probe survives renames.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import psutil
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.cluster import MODEL_VERSION, Cluster

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ModelSample:
    """One reading of /metrics for one model."""

    t_s: float
    batch_sum: float | None = None
    batch_count: float | None = None
    batch_mean_json: float | None = None
    batch_max_json: float | None = None
    queue_length: float | None = None
    rss_bytes: int | None = None


def _mentions_model(labels: dict[str, str], model: str) -> bool:
    return any(value == model or value.startswith(f"{model}:") for value in labels.values())


def read_prometheus(text: str, model: str) -> tuple[float | None, float | None, float | None]:
    """(batch size sum, batch count, queue length) for ``model`` from Prometheus text."""
    batch_sum = batch_count = queue = None
    for family in text_string_to_metric_families(text):
        name = family.name.lower()
        for sample in family.samples:
            if not _mentions_model(sample.labels, model):
                continue
            if "batch_size" in name:
                if sample.name.endswith("_sum"):
                    batch_sum = (batch_sum or 0.0) + sample.value
                elif sample.name.endswith("_count"):
                    batch_count = (batch_count or 0.0) + sample.value
            elif "queue" in name and "delay" not in name and not sample.name.endswith(("_sum", "_bucket")):
                queue = max(queue or 0.0, sample.value)
    return batch_sum, batch_count, queue


def read_cache_hits(text: str, model: str) -> float:
    """Prediction cache hits of ``model`` so far (any counter with ``cache`` in its name and a
    ``result="hit"`` label)."""
    hits = 0.0
    for family in text_string_to_metric_families(text):
        if "cache" not in family.name:
            continue
        for sample in family.samples:
            if sample.labels.get("result") == "hit" and _mentions_model(sample.labels, model):
                hits += sample.value
    return hits


def read_json_batch(report: dict[str, object], model: str) -> tuple[float | None, float | None]:
    """(mean, max) of the reservoir histogram ``model:<model>:<version>:batch_size``."""
    wanted = f"model:{model}:{MODEL_VERSION}:batch_size"
    for entry in report.get("histograms", []) or []:
        if isinstance(entry, dict) and wanted in entry:
            values = entry[wanted]
            return float(values.get("mean", 0)), float(values.get("max", 0))
    return None, None


@dataclass
class MetricsSampler:
    """Polls /metrics (and the frontend's RSS) every ``period_s`` on a thread while a load runs."""

    cluster: Cluster
    model: str
    period_s: float = 0.25
    samples: list[ModelSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def __enter__(self) -> MetricsSampler:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"metrics-{self.model}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        process = psutil.Process(self.cluster.query_pid)
        prometheus_ok = True
        while not self._stop.is_set():
            sample = ModelSample(t_s=time.monotonic() - self._started)
            try:
                if prometheus_ok:
                    sample.batch_sum, sample.batch_count, sample.queue_length = read_prometheus(
                        self.cluster.metrics_prometheus(), self.model
                    )
                    prometheus_ok = sample.batch_count is not None or sample.queue_length is not None
                if not prometheus_ok:
                    # Only as a fallback: the probe should disturb what it measures as little
                    # as it can (one render of either view costs the loop ~0.2 ms with 8 models).
                    sample.batch_mean_json, sample.batch_max_json = read_json_batch(
                        self.cluster.metrics_json(), self.model
                    )
                sample.rss_bytes = process.memory_info().rss
            except Exception as error:  # a failed probe must not stop the benchmark
                logger.warning("metrics probe failed: %s", error)
            self.samples.append(sample)
            self._stop.wait(self.period_s)

    # ---- summaries -------------------------------------------------------------------------------
    def batch_series(self) -> list[tuple[float, float]]:
        """(seconds since start, mean batch size in that interval) — from Prometheus deltas if
        available, else the JSON reservoir mean."""
        series: list[tuple[float, float]] = []
        previous: ModelSample | None = None
        for sample in self.samples:
            if (previous is not None and sample.batch_count is not None
                    and previous.batch_count is not None and sample.batch_sum is not None
                    and previous.batch_sum is not None):
                batches = sample.batch_count - previous.batch_count
                if batches > 0:
                    series.append((sample.t_s, (sample.batch_sum - previous.batch_sum) / batches))
            elif sample.batch_count is None and sample.batch_mean_json is not None:
                series.append((sample.t_s, sample.batch_mean_json))
            if sample.batch_count is not None or previous is None:
                previous = sample  # a failed probe in between must not break the next delta
        return series

    def max_queue_length(self) -> float | None:
        values = [s.queue_length for s in self.samples if s.queue_length is not None]
        return max(values) if values else None

    def max_rss_bytes(self) -> int | None:
        values = [s.rss_bytes for s in self.samples if s.rss_bytes is not None]
        return max(values) if values else None
