"""Scrapes -> the dashboard's numbers and time series (pure).

Rates are counter increases over elapsed time between scrapes, and a counter that went down (the
query frontend restarted) counts from zero, as Prometheus' ``rate`` does. Latency percentiles are
estimated from histogram buckets as Prometheus' ``histogram_quantile`` does (linear within the
bucket, the highest finite bound for the ``+Inf`` bucket), so the dashboard and a Grafana panel
over the same buckets agree. "Totals" are since the query frontend started; "window" numbers
cover the last ``window_s`` seconds of scrapes; each series point covers one scrape interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from clipper_core.management_frontend.dashboard.scrape import AppCounters, Histogram, ModelCounters, Scrape

__all__ = ["Json", "digest", "histogram_quantile"]

_MS_PER_S: Final = 1000.0
Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]
Numbers = dict[str, Json]
C = TypeVar("C", AppCounters, ModelCounters)


def _increase(now: float, before: float | None) -> float:
    if before is None or now < before:
        return now
    return now - before


def histogram_quantile(q: float, histogram: Histogram) -> float | None:
    """The ``q``-quantile estimated from cumulative buckets; None without observations."""
    if not histogram.cumulative or histogram.cumulative[-1] <= 0:
        return None
    total = histogram.cumulative[-1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(histogram.bounds, histogram.cumulative, strict=True):
        if count >= rank and count > lower_count:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _histogram_increase(now: Histogram, before: Histogram | None) -> Histogram:
    if before is None or before.bounds != now.bounds or now.count < before.count:
        return now
    return Histogram(
        now.bounds,
        tuple(n - b for n, b in zip(now.cumulative, before.cumulative, strict=True)),
        now.sum - before.sum,
        now.count - before.count,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * _MS_PER_S, 3)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _rate(increase: float, elapsed_s: float) -> float | None:
    return increase / elapsed_s if elapsed_s > 0 else None


def _app_window(now: AppCounters, before: AppCounters | None, elapsed_s: float) -> Numbers:
    latency = _histogram_increase(now.latency, before.latency if before else None)
    requests = _increase(now.requests, before.requests if before else None)
    defaults = _increase(now.defaults, before.defaults if before else None)
    return {
        "qps": _rate(requests, elapsed_s),
        "p50_ms": _ms(histogram_quantile(0.5, latency)),
        "p99_ms": _ms(histogram_quantile(0.99, latency)),
        "slo_misses": defaults,
        "slo_miss_ratio": _ratio(defaults, requests),
    }


def _model_window(now: ModelCounters, before: ModelCounters | None, elapsed_s: float) -> Numbers:
    latency = _histogram_increase(now.latency, before.latency if before else None)
    batches = _histogram_increase(now.batch_size, before.batch_size if before else None)
    hits = _increase(now.cache_hits, before.cache_hits if before else None)
    lookups = _increase(now.cache_lookups, before.cache_lookups if before else None)
    predictions = _increase(now.predictions, before.predictions if before else None)
    return {
        "throughput": _rate(predictions, elapsed_s),
        "p50_ms": _ms(histogram_quantile(0.5, latency)),
        "p99_ms": _ms(histogram_quantile(0.99, latency)),
        "cache_hit_ratio": _ratio(hits, lookups),
        "mean_batch_size": _ratio(batches.sum, batches.count),
    }


def _app_totals(app: AppCounters) -> Numbers:
    return {
        "requests": app.requests,
        "slo_misses": app.defaults,
        "slo_miss_ratio": _ratio(app.defaults, app.requests),
        "p50_ms": _ms(histogram_quantile(0.5, app.latency)),
        "p99_ms": _ms(histogram_quantile(0.99, app.latency)),
    }


def _model_totals(model: ModelCounters) -> Numbers:
    return {
        "predictions": model.predictions,
        "cache_hits": model.cache_hits,
        "cache_lookups": model.cache_lookups,
        "cache_hit_ratio": _ratio(model.cache_hits, model.cache_lookups),
        "batches": model.batch_size.count,
        "mean_batch_size": _ratio(model.batch_size.sum, model.batch_size.count),
        "p50_ms": _ms(histogram_quantile(0.5, model.latency)),
        "p99_ms": _ms(histogram_quantile(0.99, model.latency)),
        "queue_length": model.queue_length,
        "inflight_batches": model.inflight_batches,
    }


def _window_start(scrapes: Sequence[Scrape], window_s: float) -> Scrape:
    latest = scrapes[-1]
    for scrape in scrapes:
        if latest.at_s - scrape.at_s <= window_s:
            return scrape
    return latest


def digest(scrapes: Sequence[Scrape], window_s: float) -> Numbers:
    """``{"apps": {name: {...}}, "models": {label: {...}}, "sampled_at", "window_s"}`` from the
    scrapes in time order; every entry has ``total``, ``window`` and ``series`` (one point per
    interval between consecutive scrapes: ``t`` in epoch milliseconds plus one list per number)."""
    if not scrapes:
        return {"apps": {}, "models": {}, "sampled_at": None, "window_s": window_s}
    latest = scrapes[-1]
    first = _window_start(scrapes, window_s)
    elapsed_s = latest.at_s - first.at_s
    apps: dict[str, Json] = {}
    for name, app in latest.apps.items():
        apps[name] = {
            "total": _app_totals(app),
            "window": _app_window(app, first.apps.get(name) if first is not latest else app, elapsed_s),
            "series": _series(scrapes, _picker_app(name), _app_window),
        }
    models: dict[str, Json] = {}
    for label, model in latest.models.items():
        before = first.models.get(label) if first is not latest else model
        models[label] = {
            "total": _model_totals(model),
            "window": _model_window(model, before, elapsed_s),
            "series": _series(scrapes, _picker_model(label), _model_window),
        }
    return {
        "apps": apps,
        "models": models,
        "sampled_at": round(latest.wall_s * _MS_PER_S),
        "window_s": round(elapsed_s, 3),
    }


def _series(
    scrapes: Sequence[Scrape],
    pick: Callable[[Scrape], C | None],
    window: Callable[[C, C | None, float], Numbers],
) -> Numbers:
    points: dict[str, list[Json]] = {"t": []}
    for before, now in itertools.pairwise(scrapes):
        current = pick(now)
        if current is None:
            continue
        numbers = window(current, pick(before), now.at_s - before.at_s)
        points["t"].append(round(now.wall_s * _MS_PER_S))
        for key, value in numbers.items():
            points.setdefault(key, []).append(value)
    return {key: list[Json](values) for key, values in points.items()}


def _picker_app(name: str) -> Callable[[Scrape], AppCounters | None]:
    return lambda scrape: scrape.apps.get(name)


def _picker_model(label: str) -> Callable[[Scrape], ModelCounters | None]:
    return lambda scrape: scrape.models.get(label)
