"""Frontend metrics: one store, two views (Prometheus text exposition and the original's JSON).

Recording is plain attribute arithmetic on per-app / per-model holders (no locks, no
label lookups: the event loop is the only writer). The Prometheus view is a custom
collector registered on this object's own ``CollectorRegistry`` that builds metric
families from those holders at scrape time; the JSON view renders the original's report
(spec 6.2) from the same holders. Reservoirs, meters and the report writer live in
``_metrics_report.py``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from clipper_core.query_frontend._metrics_report import Meter, Reservoir, render_report
from clipper_core.query_frontend._prometheus_text import render_text

__all__ = ["AppStats", "FrontendMetrics", "ModelStats"]

LATENCY_BUCKETS_S: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
BATCH_SIZE_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
APP_SAMPLE_SIZE: Final = 4096
MODEL_SAMPLE_SIZE: Final = 4096
RPC_QUEUEING_SAMPLE_SIZE: Final = 2056  # sic: the original's reservoir size

GaugeSource = Callable[[], tuple[int, int]]  # -> (queue length, batches in flight)


class _Buckets:
    """Cumulative-at-scrape Prometheus histogram buckets."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.sum += value * times

    def family_samples(self) -> tuple[list[tuple[str, float]], float]:
        buckets = []
        total = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            total += count
            buckets.append((repr(float(bound)), float(total)))
        total += self.counts[-1]
        buckets.append(("+Inf", float(total)))
        return buckets, self.sum


class AppStats:
    __slots__ = ("defaults", "latency_buckets", "latency_us", "name", "requests", "throughput")

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.defaults = 0
        self.latency_us = Reservoir(APP_SAMPLE_SIZE)
        self.latency_buckets = _Buckets(LATENCY_BUCKETS_S)
        self.throughput = Meter()


class ModelStats:
    __slots__ = (
        "batch_buckets", "batch_sizes", "cache_coalesced", "cache_hits", "cache_misses", "gauges",
        "label", "latency_buckets", "latency_us", "predictions", "throughput",
    )

    def __init__(self, label: str, gauges: GaugeSource | None = None) -> None:
        self.label = label
        self.gauges = gauges
        self.predictions = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.cache_coalesced = 0
        self.latency_us = Reservoir(MODEL_SAMPLE_SIZE)
        self.latency_buckets = _Buckets(LATENCY_BUCKETS_S)
        self.batch_sizes = Reservoir(MODEL_SAMPLE_SIZE)
        self.batch_buckets = _Buckets(BATCH_SIZE_BUCKETS)
        self.throughput = Meter()


class FrontendMetrics:
    """All metrics of one query frontend; each instance owns its own CollectorRegistry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.apps: dict[str, AppStats] = {}
        self.models: dict[str, ModelStats] = {}
        self.cache_lookups = 0
        self.cache_hits = 0
        self.aggregate_predictions = 0
        self.aggregate_throughput = Meter()
        self.rpc_queueing_us = Reservoir(RPC_QUEUEING_SAMPLE_SIZE)
        self.rpc_messages: Callable[[], dict[tuple[str, str], int]] | None = None
        self.registry.register(_Collector(self))

    # ------------------------------------------------------------------ apps

    def add_app(self, app: str) -> AppStats:
        """Create the app's metrics (idempotent); recording creates them too."""
        stats = self.apps.get(app)
        if stats is None:
            stats = self.apps[app] = AppStats(app)
        return stats

    def record_app_query(self, app: str, latency_s: float, is_default: bool) -> None:
        """One answered query of ``app`` (model output or default) and its duration."""
        stats = self.apps.get(app) or self.add_app(app)
        stats.requests += 1
        if is_default:
            stats.defaults += 1
        stats.latency_us.add(latency_s * 1e6)
        stats.latency_buckets.observe(latency_s)
        stats.throughput.mark(1)

    def remove_app(self, app: str) -> None:
        self.apps.pop(app, None)

    # ------------------------------------------------------------------ models

    def add_model(self, model: str, gauges: GaugeSource | None = None) -> ModelStats:
        """Create (or return) the metrics of model ``<name>:<version>``."""
        stats = self.models.get(model)
        if stats is None:
            stats = self.models[model] = ModelStats(model, gauges)
        elif gauges is not None:
            stats.gauges = gauges
        return stats

    def remove_model(self, model: str) -> None:
        self.models.pop(model, None)

    def record_cache_lookup(self, stats: ModelStats | None, result: str) -> None:
        """``result`` is ``"hit"``, ``"miss"`` (query enqueued) or ``"coalesced"`` (joined one in flight)."""
        self.cache_lookups += 1
        if result == "hit":
            self.cache_hits += 1
        if stats is None:
            return
        if result == "hit":
            stats.cache_hits += 1
        elif result == "miss":
            stats.cache_misses += 1
            self.aggregate_predictions += 1
        else:
            stats.cache_coalesced += 1

    def record_batch(self, stats: ModelStats, batch_size: int, latency_s: float) -> None:
        """One answered batch: its size and send-to-response latency."""
        stats.predictions += batch_size
        # The original records the latency once per batch entry.
        stats.latency_us.add_repeated(latency_s * 1e6, batch_size)
        stats.latency_buckets.observe(latency_s, batch_size)
        stats.batch_sizes.add(batch_size)
        stats.batch_buckets.observe(batch_size)
        stats.throughput.mark(batch_size)
        self.aggregate_throughput.mark(batch_size)

    def record_rpc_queueing(self, delay_s: float) -> None:
        self.rpc_queueing_us.add(delay_s * 1e6)

    # ------------------------------------------------------------------ views

    def render_prometheus(self) -> tuple[bytes, str]:
        """(body, content type) in the Prometheus text exposition format.

        Written by ``render_text``, which matches ``generate_latest(self.registry)`` byte for
        byte at a fraction of its cost on the event loop.
        """
        return render_text(self), CONTENT_TYPE_LATEST

    def render_json_report(self) -> bytes:
        """The original's ``GET /metrics`` JSON report (spec 6.2)."""
        counters: list[tuple[str, dict[str, str]]] = [
            ("internal:prediction_cache_lookups", {"count": str(self.cache_lookups)}),
            ("internal:aggregate_num_predictions", {"count": str(self.aggregate_predictions)}),
        ]
        ratios = [("internal:prediction_cache_hit_ratio", _ratio(self.cache_hits, self.cache_lookups))]
        meters = [("internal:aggregate_model_throughput", self.aggregate_throughput.report())]
        histograms = [
            ("internal:rpc_request_queueing_delay", self.rpc_queueing_us.report("microseconds")),
        ]
        for label, model in list(self.models.items()):
            prefix = f"model:{label}:"
            lookups = model.cache_hits + model.cache_misses + model.cache_coalesced
            counters.append((prefix + "num_predictions", {"count": str(model.predictions)}))
            ratios.append((prefix + "cache_hit_ratio", _ratio(model.cache_hits, lookups)))
            meters.append((prefix + "prediction_throughput", model.throughput.report()))
            histograms.append((prefix + "prediction_latency", model.latency_us.report("microseconds")))
            histograms.append((prefix + "batch_size", model.batch_sizes.report("queries")))
        for name, app in list(self.apps.items()):
            prefix = f"app:{name}:"
            counters.append((prefix + "num_predictions", {"count": str(app.requests)}))
            ratios.append((prefix + "default_prediction_ratio", _ratio(app.defaults, app.requests)))
            meters.append((prefix + "prediction_throughput", app.throughput.report()))
            histograms.append((prefix + "prediction_latency", app.latency_us.report("microseconds")))
        return render_report(
            [("counters", counters), ("ratio_counters", ratios), ("meters", meters),
             ("histograms", histograms)]
        )


def _ratio(numerator: int, denominator: int) -> dict[str, str]:
    return {"ratio": _float_text(numerator / denominator) if denominator else "nan"}


def _float_text(value: float) -> str:
    return f"{value:.17g}"


class _Collector:
    """Builds Prometheus metric families from a FrontendMetrics at scrape time."""

    def __init__(self, metrics: FrontendMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        apps = list(m.apps.values())
        models = list(m.models.values())

        requests = CounterMetricFamily(
            "clipper_app_requests", "Queries answered per application.", labels=["app"]
        )
        defaults = CounterMetricFamily(
            "clipper_app_default_predictions",
            "Queries answered with the application's default output.",
            labels=["app"],
        )
        app_latency = HistogramMetricFamily(
            "clipper_app_prediction_latency_seconds",
            "Time from query arrival to answer, per application.",
            labels=["app"],
        )
        for app in apps:
            requests.add_metric([app.name], app.requests)
            defaults.add_metric([app.name], app.defaults)
            buckets, total = app.latency_buckets.family_samples()
            app_latency.add_metric([app.name], buckets, total)
        yield requests
        yield defaults
        yield app_latency

        predictions = CounterMetricFamily(
            "clipper_model_predictions", "Inputs answered by the model's containers.", labels=["model"]
        )
        batch_size = HistogramMetricFamily(
            "clipper_model_batch_size", "Inputs per batch sent to the model.", labels=["model"]
        )
        model_latency = HistogramMetricFamily(
            "clipper_model_prediction_latency_seconds",
            "Send-to-response time of batches, counted once per input.",
            labels=["model"],
        )
        lookups = CounterMetricFamily(
            "clipper_model_cache_lookups",
            "Prediction cache lookups by result (hit, miss, coalesced).",
            labels=["model", "result"],
        )
        queue_length = GaugeMetricFamily(
            "clipper_model_queue_length", "Queries waiting in the model's queue.", labels=["model"]
        )
        inflight = GaugeMetricFamily(
            "clipper_model_inflight_batches", "Batches sent and not yet answered.", labels=["model"]
        )
        for model in models:
            label = [model.label]
            predictions.add_metric(label, model.predictions)
            buckets, total = model.batch_buckets.family_samples()
            batch_size.add_metric(label, buckets, total)
            buckets, total = model.latency_buckets.family_samples()
            model_latency.add_metric(label, buckets, total)
            lookups.add_metric([model.label, "hit"], model.cache_hits)
            lookups.add_metric([model.label, "miss"], model.cache_misses)
            lookups.add_metric([model.label, "coalesced"], model.cache_coalesced)
            if model.gauges is not None:
                queued, batches = model.gauges()
                queue_length.add_metric(label, queued)
                inflight.add_metric(label, batches)
        yield from (predictions, batch_size, model_latency, lookups, queue_length, inflight)

        messages = CounterMetricFamily(
            "clipper_rpc_messages", "RPC messages by direction and type.", labels=["direction", "type"]
        )
        if m.rpc_messages is not None:
            for (direction, kind), count in sorted(m.rpc_messages().items()):
                messages.add_metric([direction, kind], count)
        yield messages
