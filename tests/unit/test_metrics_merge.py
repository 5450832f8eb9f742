"""merge_reports: several query frontends' JSON metrics reports as one (clipper_admin._metrics_merge).

The reports are written by the query frontend's own FrontendMetrics, so a change of the report's
shape breaks these tests rather than the merge silently.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from clipper_admin._metrics_merge import merge_reports
from clipper_core.query_frontend._metrics_report import percentile
from clipper_core.query_frontend.metrics import FrontendMetrics


def report_of(metrics: FrontendMetrics) -> dict[str, Any]:
    body = metrics.render_json_report()
    return json.loads(body) if body else {}


def entry(report: dict[str, Any], category: str, name: str) -> dict[str, str]:
    (fields,) = [e[name] for e in report[category] if name in e]
    return fields  # type: ignore[no-any-return]


def frontend(latencies_s: list[float], defaults: int, hits: int, misses: int) -> FrontendMetrics:
    metrics = FrontendMetrics()
    model = metrics.add_model("m:1")
    for i, latency_s in enumerate(latencies_s):
        metrics.record_app_query("app", latency_s, is_default=i < defaults)
    for _ in range(hits):
        metrics.record_cache_lookup(model, "hit")
    for _ in range(misses):
        metrics.record_cache_lookup(model, "miss")
    metrics.record_batch(model, misses, 0.002)
    return metrics


def test_counters_sum_and_histograms_pool_exactly_but_percentiles() -> None:
    rng = random.Random(7)
    fast = [rng.uniform(0.001, 0.002) for _ in range(300)]
    slow = [rng.uniform(0.004, 0.010) for _ in range(100)]
    merged = merge_reports([report_of(frontend(fast, 30, 10, 90)), report_of(frontend(slow, 0, 0, 50))])

    assert entry(merged, "counters", "app:app:num_predictions") == {"count": "400"}
    assert entry(merged, "counters", "internal:prediction_cache_lookups") == {"count": "150"}
    assert entry(merged, "counters", "model:m:1:num_predictions") == {"count": "140"}
    # Ratios weighted by what they count: 30 defaults of 400; 10 hits of 150 lookups.
    ratio = entry(merged, "ratio_counters", "app:app:default_prediction_ratio")["ratio"]
    assert float(ratio) == pytest.approx(30 / 400)
    ratio = entry(merged, "ratio_counters", "internal:prediction_cache_hit_ratio")["ratio"]
    assert float(ratio) == pytest.approx(10 / 150)

    union_us = sorted(v * 1e6 for v in fast + slow)
    latency = entry(merged, "histograms", "app:app:prediction_latency")
    assert latency["unit"] == "microseconds"
    assert latency["size"] == "400"
    assert (int(latency["min"]), int(latency["max"])) == (int(union_us[0]), int(union_us[-1]))
    mean = sum(union_us) / len(union_us)
    assert float(latency["mean"]) == pytest.approx(mean)
    assert float(latency["std_dev"]) == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in union_us) / 400))
    for key, rank in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        # The largest frontend's percentile: never below the union's.
        assert float(latency[key]) >= percentile(union_us, rank)
    assert float(latency["p99"]) == pytest.approx(percentile(sorted(v * 1e6 for v in slow), 0.99))


def test_meters_sum_their_rates() -> None:
    one, two = report_of(frontend([0.001] * 5, 0, 0, 5)), report_of(frontend([0.001] * 3, 0, 0, 3))
    merged = entry(merge_reports([one, two]), "meters", "app:app:prediction_throughput")
    parts = [entry(r, "meters", "app:app:prediction_throughput") for r in (one, two)]
    assert merged["unit"] == "events per second"
    assert float(merged["rate"]) == pytest.approx(sum(float(p["rate"]) for p in parts))
    # No 5 s tick yet anywhere: the EWMA rates stay -1, as one frontend's would.
    assert merged["rate_1min"] == "-1"


def test_empty_reports_add_nothing() -> None:
    only = report_of(frontend([0.001], 1, 0, 1))
    assert merge_reports([{}, only, {}]) == only
    assert merge_reports([{}, {}]) == {}


def test_a_metric_on_one_frontend_only_is_kept_and_nan_ratios_are_left_out() -> None:
    one = frontend([0.001], 0, 2, 2)
    two = FrontendMetrics()
    two.add_model("m:1")  # a lookup-less model: its hit ratio is nan there
    two.record_app_query("other", 0.003, is_default=True)
    merged = merge_reports([report_of(one), report_of(two)])
    assert entry(merged, "counters", "app:other:num_predictions") == {"count": "1"}
    assert entry(merged, "counters", "app:app:num_predictions") == {"count": "1"}
    ratio = entry(merged, "ratio_counters", "model:m:1:cache_hit_ratio")["ratio"]
    assert float(ratio) == pytest.approx(0.5)
    assert entry(merged, "histograms", "app:other:prediction_latency")["size"] == "1"
