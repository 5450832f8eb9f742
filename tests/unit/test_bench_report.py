"""Pure parts of the benchmark harness: target verdicts, Prometheus and py-spy parsing."""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.metrics_probe import read_cache_hits, read_json_batch, read_prometheus
from benchmarks.profile import top_functions
from benchmarks.report import evaluate_targets, table


def _run(qps: float, p99: float = 1.0, defaults: int = 0) -> dict[str, Any]:
    return {"qps": qps, "goodput_qps": qps, "p50_ms": 0.5, "p99_ms": p99, "defaults": defaults,
            "errors": 0, "rounds": []}


PASSING: dict[str, Any] = {
    "noop": {
        "by_concurrency": {
            "1": {"reference": _run(1000), "frontend": _run(700), "frontend_fixed_batch_1": _run(800),
                  "ratio_to_reference": 0.7, "adaptive_over_fixed_batch_1": 0.875},
            "32": {"reference": _run(1000, p99=6.0), "frontend": _run(650, p99=9.0),
                   "ratio_to_reference": 0.65},
        },
        "cache": {"concurrency": 32, "reference": _run(1000), "frontend_cache_hits": _run(850),
                  "ratio_to_reference": 0.85},
    },
    "batching": {
        "concurrency": 64, "slo_ms": 50.0,
        "variants": {
            "adaptive": {**_run(2000, p99=40.0), "batch_size_median": 20},
            "fixed_1": {**_run(150), "batch_size_median": 1},
            "fixed_16": {**_run(2100), "batch_size_median": 16},
        },
    },
    "overload": {"offered_qps": 400.0, "bound_ms": 55.0, "share_within_bound": 1.0, "errors": 0,
                 "share_default": 0.5, "max_queue_length": 20.0, "rss_before_mb": 60.0,
                 "rss_after_mb": 61.0},
    "memory": {"query_frontend_with_apps_mb": 60.0, "container_runtime_noop_mb": 35.0,
               "whole_cluster_mb": 150.0, "apps": 102},
}


def _verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    return {t.name: t.passed for t in evaluate_targets(figures)}


def test_every_target_passes_on_good_figures() -> None:
    verdicts = _verdicts(PASSING)
    assert len(verdicts) == 14
    assert all(verdicts.values()), verdicts


def test_each_shortfall_fails_its_own_target() -> None:
    cases = [
        (("noop", "by_concurrency", "32", "ratio_to_reference"), 0.59, "noop_c32_throughput_vs_reference"),
        (("noop", "by_concurrency", "32", "frontend", "p99_ms"), 9.1, "noop_c32_p99_vs_reference"),
        (("noop", "by_concurrency", "32", "reference", "p99_ms"), 5.9, "noop_c32_p99_vs_reference"),
        (("noop", "by_concurrency", "1", "ratio_to_reference"), 0.59, "noop_c1_throughput_vs_reference"),
        (("noop", "by_concurrency", "1", "adaptive_over_fixed_batch_1"), 0.79,
         "c1_adaptive_vs_fixed_batch_1"),
        (("batching", "variants", "fixed_16", "goodput_qps"), 2300, "batch_adaptive_vs_best_fixed"),
        (("batching", "variants", "fixed_1", "goodput_qps"), 201, "batch_adaptive_vs_fixed_1"),
        (("batching", "variants", "adaptive", "p99_ms"), 51.0, "batch_adaptive_p99_within_slo"),
        (("noop", "cache", "ratio_to_reference"), 0.79, "cache_hits_vs_reference"),
        (("overload", "share_within_bound"), 0.999, "overload_all_answered_by_slo_plus_5ms"),
        (("overload", "max_queue_length"), 400.0, "overload_queue_bounded"),
        (("overload", "rss_after_mb"), 75.0, "overload_memory_flat"),
        (("memory", "query_frontend_with_apps_mb"), 151.0, "memory_query_frontend_100_apps_mb"),
        (("memory", "container_runtime_noop_mb"), 61.0, "memory_container_runtime_mb"),
        (("memory", "whole_cluster_mb"), 301.0, "memory_whole_cluster_mb"),
    ]
    for path, value, target in cases:
        figures = copy.deepcopy(PASSING)
        holder = figures
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value
        verdicts = _verdicts(figures)
        assert not verdicts[target], (path, value)
        assert sum(not v for v in verdicts.values()) == 1, (path, verdicts)


def test_missing_scenarios_fail_rather_than_pass() -> None:
    verdicts = _verdicts({})
    assert verdicts and not any(verdicts.values())


def test_table_lists_targets_with_verdicts() -> None:
    text = table(PASSING, evaluate_targets(PASSING))
    assert "no-op adaptive c=32" in text
    assert text.count("PASS") == 14


def test_table_lists_the_sleeping_batch_scenario_when_it_ran() -> None:
    figures = copy.deepcopy(PASSING)
    assert "sleeping batch" not in table(figures, None)
    figures["batching_sleep"] = copy.deepcopy(PASSING["batching"])
    assert "sleeping batch adaptive c=64" in table(figures, None)


def test_prometheus_batch_sum_count_and_queue_for_one_model() -> None:
    text = "\n".join([
        "# TYPE clipper_model_batch_size histogram",
        'clipper_model_batch_size_bucket{model="m:1",le="+Inf"} 10.0',
        'clipper_model_batch_size_count{model="m:1"} 10.0',
        'clipper_model_batch_size_sum{model="m:1"} 55.0',
        'clipper_model_batch_size_count{model="m2:1"} 99.0',
        'clipper_model_batch_size_sum{model="m2:1"} 999.0',
        "# TYPE clipper_model_queue_length gauge",
        'clipper_model_queue_length{model="m:1"} 7.0',
        'clipper_model_queue_length{model="m2:1"} 70.0',
        "",
    ])
    assert read_prometheus(text, "m") == (55.0, 10.0, 7.0)
    assert read_prometheus(text, "absent") == (None, None, None)


def test_json_report_batch_histogram() -> None:
    report = {"histograms": [{"model:m:1:batch_size": {"unit": "queries", "mean": "4.5", "max": "9"}}]}
    assert read_json_batch(report, "m") == (4.5, 9.0)
    assert read_json_batch(report, "other") == (None, None)


def test_top_functions_from_collapsed_stacks() -> None:
    collapsed = "main;handle;write 30\nmain;handle;parse 10\nmain;idle 60\nbad line\n"
    self_share, inclusive = top_functions(collapsed, limit=3)
    assert self_share[0] == ("idle", 0.6)
    assert dict(self_share)["write"] == 0.3
    assert inclusive[0] == ("main", 1.0)
    assert dict(inclusive)["handle"] == 0.4
    assert top_functions("") == ([], [])


def test_cache_hits_of_one_model() -> None:
    text = "\n".join([
        "# TYPE clipper_model_cache_lookups counter",
        'clipper_model_cache_lookups_total{model="m:1",result="hit"} 5.0',
        'clipper_model_cache_lookups_total{model="m:1",result="miss"} 50.0',
        'clipper_model_cache_lookups_total{model="m2:1",result="hit"} 7.0',
        "",
    ])
    assert read_cache_hits(text, "m") == 5.0
    assert read_cache_hits(text, "m3") == 0.0
