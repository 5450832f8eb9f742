"""Frontend metrics: one store, two views (Prometheus text exposition and the original's JSON).

Recording is plain attribute arithmetic on per-app / per-model holders (no locks, no
label lookups: the event loop is the only writer). The Prometheus view is written at scrape
time from those holders by one writer that reads the metric-family table :data:`FAMILIES`
(names, types, help texts, label names); the JSON view renders the original's report
(spec 6.2) from the same holders. Reservoirs, meters and the report writer live in
``_metrics_report.py``, the text-format helpers in ``_prometheus_text.py``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Final

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from clipper_core.query_frontend._metrics_report import Meter, Reservoir, render_report
from clipper_core.query_frontend._prometheus_text import MetricFamily, escape, histogram_lines, value_text

__all__ = ["FAMILIES", "AppStats", "FrontendMetrics", "MetricFamily", "ModelStats", "SelectionStats"]

LATENCY_BUCKETS_S: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
BATCH_SIZE_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
APP_SAMPLE_SIZE: Final = 4096
MODEL_SAMPLE_SIZE: Final = 4096
RPC_QUEUEING_SAMPLE_SIZE: Final = 2056  # sic: the original's reservoir size

GaugeSource = Callable[[], tuple[int, int]]  # -> (queue length, batches in flight)

# The metric families, in exposition order: the one place their names and help texts live.
APP_REQUESTS: Final = MetricFamily(
    "clipper_app_requests", "counter", "Queries answered per application.", ("app",)
)
APP_DEFAULTS: Final = MetricFamily(
    "clipper_app_default_predictions", "counter",
    "Queries answered with the application's default output.", ("app",),
)
APP_LATENCY: Final = MetricFamily(
    "clipper_app_prediction_latency_seconds", "histogram",
    "Time from query arrival to answer, per application.", ("app",),
)
MODEL_PREDICTIONS: Final = MetricFamily(
    "clipper_model_predictions", "counter", "Inputs answered by the model's containers.", ("model",)
)
MODEL_BATCH_SIZE: Final = MetricFamily(
    "clipper_model_batch_size", "histogram", "Inputs per batch sent to the model.", ("model",)
)
MODEL_LATENCY: Final = MetricFamily(
    "clipper_model_prediction_latency_seconds", "histogram",
    "Send-to-response time of batches, counted once per input.", ("model",),
)
MODEL_LOOKUPS: Final = MetricFamily(
    "clipper_model_cache_lookups", "counter",
    "Prediction cache lookups by result (hit, miss, coalesced).", ("model", "result"),
)
MODEL_QUEUE: Final = MetricFamily(
    "clipper_model_queue_length", "gauge", "Queries waiting in the model's queue.", ("model",)
)
MODEL_INFLIGHT: Final = MetricFamily(
    "clipper_model_inflight_batches", "gauge", "Batches sent and not yet answered.", ("model",)
)
RPC_MESSAGES: Final = MetricFamily(
    "clipper_rpc_messages", "counter", "RPC messages by direction and type.", ("direction", "type")
)
# Selection policies (issue 15), per application; models are named without version, as the
# policies' weights are kept per model name.
SELECTION_CHOICES: Final = MetricFamily(
    "clipper_selection_choices", "counter",
    "Queries for which the application's selection policy asked the model.", ("app", "model"),
)
SELECTION_WEIGHT: Final = MetricFamily(
    "clipper_selection_weight", "gauge",
    "The model's share of the application-wide policy weights (sums to 1 per app).", ("app", "model"),
)
SELECTION_FEEDBACK: Final = MetricFamily(
    "clipper_selection_feedback", "counter",
    "Feedback requests by result (applied to the weights, or ignored).", ("app", "result"),
)
ENSEMBLE_ASKED: Final = MetricFamily(
    "clipper_ensemble_members_asked", "counter", "Ensemble members asked, summed over queries.", ("app",)
)
ENSEMBLE_ANSWERED: Final = MetricFamily(
    "clipper_ensemble_members_answered", "counter",
    "Ensemble members that answered by the deadline, summed over queries "
    "(completeness = answered / asked).", ("app",),
)
ENSEMBLE_LOW_CONFIDENCE: Final = MetricFamily(
    "clipper_ensemble_low_confidence_answers", "counter",
    "Ensemble answers replaced by the default output for low confidence.", ("app",),
)
FAMILIES: Final = (
    APP_REQUESTS, APP_DEFAULTS, APP_LATENCY, MODEL_PREDICTIONS, MODEL_BATCH_SIZE, MODEL_LATENCY,
    MODEL_LOOKUPS, MODEL_QUEUE, MODEL_INFLIGHT, RPC_MESSAGES, SELECTION_CHOICES, SELECTION_WEIGHT,
    SELECTION_FEEDBACK, ENSEMBLE_ASKED, ENSEMBLE_ANSWERED, ENSEMBLE_LOW_CONFIDENCE,
)


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

    def write(self, out: list[str], family: MetricFamily, label: str, le_first: bool) -> None:
        histogram_lines(out, family, self.bounds, self.counts, self.sum, label, le_first)


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


class SelectionStats:
    """One application's selection-policy counters (only apps on a policy other than the default)."""

    __slots__ = ("answered", "asked", "choices", "feedback", "low_confidence", "name", "weights")

    def __init__(self, name: str) -> None:
        self.name = name
        self.choices: dict[str, int] = {}
        self.weights: dict[str, float] = {}
        self.feedback = {"applied": 0, "ignored": 0}
        self.asked = 0
        self.answered = 0
        self.low_confidence = 0


class FrontendMetrics:
    """All metrics of one query frontend (each instance on its own)."""

    def __init__(self) -> None:
        self.apps: dict[str, AppStats] = {}
        self.selection: dict[str, SelectionStats] = {}
        self.models: dict[str, ModelStats] = {}
        self.cache_lookups = 0
        self.cache_hits = 0
        self.aggregate_predictions = 0
        self.aggregate_throughput = Meter()
        self.rpc_queueing_us = Reservoir(RPC_QUEUEING_SAMPLE_SIZE)
        self.rpc_messages: Callable[[], dict[tuple[str, str], int]] | None = None

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
        self.selection.pop(app, None)

    # ------------------------------------------------------------------ selection policies

    def _selection(self, app: str) -> SelectionStats:
        stats = self.selection.get(app)
        if stats is None:
            stats = self.selection[app] = SelectionStats(app)
        return stats

    def record_selection(self, app: str, models: tuple[str, ...]) -> None:
        """The policy asked ``models`` (names) for one query."""
        choices = self._selection(app).choices
        for model in models:
            choices[model] = choices.get(model, 0) + 1

    def record_ensemble(self, app: str, answered: int, asked: int, is_low_confidence: bool) -> None:
        stats = self._selection(app)
        stats.asked += asked
        stats.answered += answered
        if is_low_confidence:
            stats.low_confidence += 1

    def record_weights(self, app: str, weights: dict[str, float]) -> None:
        """The application-wide weights (any scale; shown as shares)."""
        total = sum(weights.values())
        self._selection(app).weights = {m: w / total for m, w in weights.items()} if total > 0 else {}

    def record_feedback(self, app: str, is_applied: bool) -> None:
        self._selection(app).feedback["applied" if is_applied else "ignored"] += 1

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
        """(body, content type) in the Prometheus text exposition format (:data:`FAMILIES`).

        The same text ``prometheus_client.generate_latest`` writes for these families, at a
        fraction of its cost on the event loop (see ``_prometheus_text``).
        """
        app_labels = [(app, f'app="{escape(app.name)}"') for app in list(self.apps.values())]
        model_labels = [(model, f'model="{escape(model.label)}"') for model in list(self.models.values())]

        out: list[str] = [APP_REQUESTS.header]
        name = APP_REQUESTS.sample_name
        out.extend(f"{name}{{{lb}}} {value_text(a.requests)}\n" for a, lb in app_labels)
        out.append(APP_DEFAULTS.header)
        name = APP_DEFAULTS.sample_name
        out.extend(f"{name}{{{lb}}} {value_text(a.defaults)}\n" for a, lb in app_labels)
        out.append(APP_LATENCY.header)
        for app, label in app_labels:  # "app" sorts before "le"
            app.latency_buckets.write(out, APP_LATENCY, label, le_first=False)

        out.append(MODEL_PREDICTIONS.header)
        name = MODEL_PREDICTIONS.sample_name
        out.extend(f"{name}{{{lb}}} {value_text(m.predictions)}\n" for m, lb in model_labels)
        out.append(MODEL_BATCH_SIZE.header)
        for model, label in model_labels:  # "le" sorts before "model"
            model.batch_buckets.write(out, MODEL_BATCH_SIZE, label, le_first=True)
        out.append(MODEL_LATENCY.header)
        for model, label in model_labels:
            model.latency_buckets.write(out, MODEL_LATENCY, label, le_first=True)
        out.append(MODEL_LOOKUPS.header)
        name = MODEL_LOOKUPS.sample_name
        for model, label in model_labels:
            out.append(f'{name}{{{label},result="hit"}} {value_text(model.cache_hits)}\n')
            out.append(f'{name}{{{label},result="miss"}} {value_text(model.cache_misses)}\n')
            out.append(f'{name}{{{label},result="coalesced"}} {value_text(model.cache_coalesced)}\n')
        gauges = [(label, model.gauges()) for model, label in model_labels if model.gauges is not None]
        out.append(MODEL_QUEUE.header)
        name = MODEL_QUEUE.sample_name
        out.extend(f"{name}{{{lb}}} {value_text(q)}\n" for lb, (q, _) in gauges)
        out.append(MODEL_INFLIGHT.header)
        name = MODEL_INFLIGHT.sample_name
        out.extend(f"{name}{{{lb}}} {value_text(b)}\n" for lb, (_, b) in gauges)

        out.append(RPC_MESSAGES.header)
        if self.rpc_messages is not None:
            name = RPC_MESSAGES.sample_name
            for (direction, kind), count in sorted(self.rpc_messages().items()):
                labels = f'direction="{escape(direction)}",type="{escape(kind)}"'
                out.append(f"{name}{{{labels}}} {value_text(count)}\n")
        self._write_selection(out)
        return "".join(out).encode(), CONTENT_TYPE_LATEST

    def _write_selection(self, out: list[str]) -> None:
        apps = [(stats, f'app="{escape(stats.name)}"') for stats in list(self.selection.values())]
        for family, per_model in ((SELECTION_CHOICES, True), (SELECTION_WEIGHT, False)):
            out.append(family.header)
            name = family.sample_name
            for stats, label in apps:
                values: dict[str, int] | dict[str, float] = stats.choices if per_model else stats.weights
                for model, value in values.items():
                    out.append(f'{name}{{{label},model="{escape(model)}"}} {value_text(value)}\n')
        out.append(SELECTION_FEEDBACK.header)
        name = SELECTION_FEEDBACK.sample_name
        for stats, label in apps:
            for result, count in stats.feedback.items():
                out.append(f'{name}{{{label},result="{result}"}} {value_text(count)}\n')
        for family, attribute in (
            (ENSEMBLE_ASKED, "asked"),
            (ENSEMBLE_ANSWERED, "answered"),
            (ENSEMBLE_LOW_CONFIDENCE, "low_confidence"),
        ):
            out.append(family.header)
            name = family.sample_name
            out.extend(
                f"{name}{{{label}}} {value_text(getattr(stats, attribute))}\n" for stats, label in apps
            )

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
        for stats in list(self.selection.values()):
            self._selection_report_entries(stats, counters, ratios)
        return render_report(
            [("counters", counters), ("ratio_counters", ratios), ("meters", meters),
             ("histograms", histograms)]
        )


    @staticmethod
    def _selection_report_entries(
        stats: SelectionStats,
        counters: list[tuple[str, dict[str, str]]],
        ratios: list[tuple[str, dict[str, str]]],
    ) -> None:
        """Ours, in the original report's shape, after its own entries (an app on a selection
        policy only): ``app:<app>:selection:<model>:choices`` counters and ``...:weight`` ratios
        (the model's share of the weight), the feedback counters, and for an ensemble the
        members asked and answered, ``app:<app>:ensemble_completeness`` (answered / asked) and
        the low-confidence answers."""
        prefix = f"app:{stats.name}:"
        for model, count in list(stats.choices.items()):
            counters.append((f"{prefix}selection:{model}:choices", {"count": str(count)}))
        for model, share in list(stats.weights.items()):
            ratios.append((f"{prefix}selection:{model}:weight", {"ratio": _float_text(share)}))
        for result, count in stats.feedback.items():
            counters.append((f"{prefix}selection_feedback_{result}", {"count": str(count)}))
        if stats.asked:
            for name, count in (
                ("ensemble_members_asked", stats.asked),
                ("ensemble_members_answered", stats.answered),
                ("ensemble_low_confidence_answers", stats.low_confidence),
            ):
                counters.append((prefix + name, {"count": str(count)}))
            ratios.append((prefix + "ensemble_completeness", _ratio(stats.answered, stats.asked)))


def _ratio(numerator: int, denominator: int) -> dict[str, str]:
    return {"ratio": _float_text(numerator / denominator) if denominator else "nan"}


def _float_text(value: float) -> str:
    return f"{value:.17g}"
