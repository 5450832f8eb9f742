"""One scrape of the query frontend's ``/metrics`` (Prometheus text) as typed per-app and per-model
counters (pure).

The metric names are the query frontend's (``clipper_core.query_frontend.metrics.FAMILIES``);
the frontends do not import each other, so they are spelled here once and
``tests/unit/test_dashboard_scrape.py`` checks them against that table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "APP_DEFAULTS",
    "APP_LATENCY",
    "APP_REQUESTS",
    "DASHBOARD_FAMILIES",
    "MODEL_BATCH_SIZE",
    "MODEL_INFLIGHT",
    "MODEL_LATENCY",
    "MODEL_LOOKUPS",
    "MODEL_PREDICTIONS",
    "MODEL_QUEUE",
    "AppCounters",
    "Histogram",
    "ModelCounters",
    "Scrape",
    "merge_scrapes",
    "parse_scrape",
]

# Family names as prometheus_client's parser reports them (counters without ``_total``).
APP_REQUESTS: Final = "clipper_app_requests"
APP_DEFAULTS: Final = "clipper_app_default_predictions"
APP_LATENCY: Final = "clipper_app_prediction_latency_seconds"
MODEL_PREDICTIONS: Final = "clipper_model_predictions"
MODEL_BATCH_SIZE: Final = "clipper_model_batch_size"
MODEL_LATENCY: Final = "clipper_model_prediction_latency_seconds"
MODEL_LOOKUPS: Final = "clipper_model_cache_lookups"
MODEL_QUEUE: Final = "clipper_model_queue_length"
MODEL_INFLIGHT: Final = "clipper_model_inflight_batches"
DASHBOARD_FAMILIES: Final = (
    APP_REQUESTS, APP_DEFAULTS, APP_LATENCY, MODEL_PREDICTIONS, MODEL_BATCH_SIZE, MODEL_LATENCY,
    MODEL_LOOKUPS, MODEL_QUEUE, MODEL_INFLIGHT,
)


@dataclass(slots=True, frozen=True)
class Histogram:
    """A Prometheus histogram: upper bounds (``+Inf`` last), cumulative counts, sum and count."""

    bounds: tuple[float, ...] = ()
    cumulative: tuple[float, ...] = ()
    sum: float = 0.0
    count: float = 0.0


@dataclass(slots=True)
class AppCounters:
    requests: float = 0.0
    defaults: float = 0.0
    latency: Histogram = field(default_factory=Histogram)


@dataclass(slots=True)
class ModelCounters:
    predictions: float = 0.0
    cache_hits: float = 0.0
    cache_misses: float = 0.0
    cache_coalesced: float = 0.0
    queue_length: float = 0.0
    inflight_batches: float = 0.0
    batch_size: Histogram = field(default_factory=Histogram)
    latency: Histogram = field(default_factory=Histogram)

    @property
    def cache_lookups(self) -> float:
        return self.cache_hits + self.cache_misses + self.cache_coalesced


@dataclass(slots=True, frozen=True)
class Scrape:
    """The counters at one moment: ``at_s`` (monotonic) for rates, ``wall_s`` (epoch) for plots."""

    at_s: float
    wall_s: float
    apps: dict[str, AppCounters]
    models: dict[str, ModelCounters]


class _HistogramParts:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets: list[tuple[float, float]] = []
        self.sum = 0.0
        self.count = 0.0

    def build(self) -> Histogram:
        self.buckets.sort()
        return Histogram(
            tuple(bound for bound, _ in self.buckets),
            tuple(count for _, count in self.buckets),
            self.sum,
            self.count,
        )


def _histograms(samples: list[tuple[str, dict[str, str], float]], label: str) -> dict[str, Histogram]:
    parts: dict[str, _HistogramParts] = {}
    for name, labels, value in samples:
        key = labels.get(label)
        if key is None:
            continue
        part = parts.get(key) or parts.setdefault(key, _HistogramParts())
        if name.endswith("_bucket"):
            part.buckets.append((math.inf if labels["le"] == "+Inf" else float(labels["le"]), value))
        elif name.endswith("_sum"):
            part.sum = value
        elif name.endswith("_count"):
            part.count = value
    return {key: part.build() for key, part in parts.items()}


def parse_scrape(text: str, at_s: float, wall_s: float) -> Scrape:
    """The dashboard's families out of a ``/metrics`` text; other families are ignored.

    Raises:
        ValueError: the text is not the Prometheus exposition format.
    """
    by_family: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in DASHBOARD_FAMILIES:
            by_family[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    apps: dict[str, AppCounters] = {}
    models: dict[str, ModelCounters] = {}

    def app(name: str) -> AppCounters:
        return apps.get(name) or apps.setdefault(name, AppCounters())

    def model(name: str) -> ModelCounters:
        return models.get(name) or models.setdefault(name, ModelCounters())

    for _, labels, value in by_family.get(APP_REQUESTS, ()):
        app(labels["app"]).requests = value
    for _, labels, value in by_family.get(APP_DEFAULTS, ()):
        app(labels["app"]).defaults = value
    for name, histogram in _histograms(by_family.get(APP_LATENCY, []), "app").items():
        app(name).latency = histogram
    for _, labels, value in by_family.get(MODEL_PREDICTIONS, ()):
        model(labels["model"]).predictions = value
    for _, labels, value in by_family.get(MODEL_LOOKUPS, ()):
        counters = model(labels["model"])
        result = labels.get("result")
        if result == "hit":
            counters.cache_hits = value
        elif result == "miss":
            counters.cache_misses = value
        elif result == "coalesced":
            counters.cache_coalesced = value
    for _, labels, value in by_family.get(MODEL_QUEUE, ()):
        model(labels["model"]).queue_length = value
    for _, labels, value in by_family.get(MODEL_INFLIGHT, ()):
        model(labels["model"]).inflight_batches = value
    for name, histogram in _histograms(by_family.get(MODEL_BATCH_SIZE, []), "model").items():
        model(name).batch_size = histogram
    for name, histogram in _histograms(by_family.get(MODEL_LATENCY, []), "model").items():
        model(name).latency = histogram
    return Scrape(at_s, wall_s, apps, models)


def _merge_histograms(a: Histogram, b: Histogram) -> Histogram:
    if not a.bounds:
        return b
    if not b.bounds:
        return a
    if a.bounds != b.bounds:  # frontends of different versions: keep the first one's buckets
        return a
    return Histogram(
        a.bounds,
        tuple(x + y for x, y in zip(a.cumulative, b.cumulative, strict=True)),
        a.sum + b.sum,
        a.count + b.count,
    )


def merge_scrapes(scrapes: list[Scrape]) -> Scrape:
    """Several frontends' scrapes of one round as one: counters, gauges and buckets summed."""
    first = scrapes[0]
    if len(scrapes) == 1:
        return first
    apps: dict[str, AppCounters] = {}
    models: dict[str, ModelCounters] = {}
    for scrape in scrapes:
        for name, app in scrape.apps.items():
            into = apps.get(name)
            if into is None:
                apps[name] = AppCounters(app.requests, app.defaults, app.latency)
                continue
            into.requests += app.requests
            into.defaults += app.defaults
            into.latency = _merge_histograms(into.latency, app.latency)
        for label, model in scrape.models.items():
            target = models.get(label)
            if target is None:
                models[label] = ModelCounters(
                    model.predictions, model.cache_hits, model.cache_misses, model.cache_coalesced,
                    model.queue_length, model.inflight_batches, model.batch_size, model.latency,
                )
                continue
            target.predictions += model.predictions
            target.cache_hits += model.cache_hits
            target.cache_misses += model.cache_misses
            target.cache_coalesced += model.cache_coalesced
            target.queue_length += model.queue_length
            target.inflight_batches += model.inflight_batches
            target.batch_size = _merge_histograms(target.batch_size, model.batch_size)
            target.latency = _merge_histograms(target.latency, model.latency)
    return Scrape(first.at_s, first.wall_s, apps, models)
