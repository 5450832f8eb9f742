"""FrontendMetrics: Prometheus exposition, the original's JSON report (spec 6.2), its formulas."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from clipper_core.query_frontend import metrics as m
from clipper_core.query_frontend._metrics_report import (
    METER_TICK_S,
    Meter,
    Reservoir,
    percentile,
    render_report,
)
from clipper_core.query_frontend.metrics import FrontendMetrics


def report(metrics: FrontendMetrics) -> dict[str, list[dict[str, dict[str, str]]]]:
    return json.loads(metrics.render_json_report())


def entry(parsed: dict[str, list[dict[str, dict[str, str]]]], category: str, name: str) -> dict[str, str]:
    matches = [item[name] for item in parsed[category] if name in item]
    assert len(matches) == 1, f"{name} appears {len(matches)} times in {category}"
    return matches[0]


def samples(metrics: FrontendMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render_prometheus()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_report_shape_and_every_leaf_is_a_string() -> None:
    metrics = FrontendMetrics()
    metrics.record_app_query("a", 0.010, is_default=False)
    metrics.record_app_query("a", 0.030, is_default=True)
    stats = metrics.add_model("m:1")
    metrics.record_cache_lookup(stats, "miss")
    metrics.record_cache_lookup(stats, "hit")
    metrics.record_batch(stats, 4, 0.002)
    parsed = report(metrics)
    assert list(parsed) == ["counters", "ratio_counters", "meters", "histograms"]
    for items in parsed.values():
        for item in items:
            ((name, fields),) = item.items()
            assert all(isinstance(v, str) for v in fields.values()), name
    assert entry(parsed, "counters", "app:a:num_predictions") == {"count": "2"}
    assert entry(parsed, "ratio_counters", "app:a:default_prediction_ratio") == {"ratio": "0.5"}
    assert entry(parsed, "counters", "model:m:1:num_predictions") == {"count": "4"}
    assert entry(parsed, "ratio_counters", "model:m:1:cache_hit_ratio") == {"ratio": "0.5"}
    assert entry(parsed, "ratio_counters", "internal:prediction_cache_hit_ratio") == {"ratio": "0.5"}
    assert entry(parsed, "counters", "internal:prediction_cache_lookups") == {"count": "2"}
    assert entry(parsed, "counters", "internal:aggregate_num_predictions") == {"count": "1"}
    latency = entry(parsed, "histograms", "app:a:prediction_latency")
    assert latency["unit"] == "microseconds"
    assert (latency["size"], latency["min"], latency["max"]) == ("2", "10000", "30000")
    assert latency["mean"] == "20000"
    assert latency["std_dev"] == "10000"
    assert set(latency) == {"unit", "size", "min", "max", "mean", "std_dev", "p50", "p95", "p99"}
    batch = entry(parsed, "histograms", "model:m:1:batch_size")
    assert (batch["unit"], batch["size"], batch["max"]) == ("queries", "1", "4")
    model_latency = entry(parsed, "histograms", "model:m:1:prediction_latency")
    assert model_latency["size"] == "4"  # once per batch entry, as the original
    meter = entry(parsed, "meters", "app:a:prediction_throughput")
    assert set(meter) == {"unit", "rate", "rate_1min", "rate_5min", "rate_15min"}
    assert meter["unit"] == "events per second" and meter["rate_1min"] == "-1"
    assert entry(parsed, "histograms", "internal:rpc_request_queueing_delay")["unit"] == "microseconds"
    entry(parsed, "meters", "internal:aggregate_model_throughput")


def test_report_is_boost_style_pretty_json() -> None:
    body = FrontendMetrics().render_json_report().decode()
    assert body.startswith(
        '{\n    "counters": [\n        {\n            "internal:prediction_cache_lookups": {\n'
    )
    assert '                "count": "0"\n' in body
    assert body.endswith("    ]\n}\n")


def test_ratio_with_zero_denominator_is_nan() -> None:
    parsed = report(FrontendMetrics())
    assert entry(parsed, "ratio_counters", "internal:prediction_cache_hit_ratio") == {"ratio": "nan"}


def test_report_carries_selection_choices_weights_and_ensemble_completeness() -> None:
    metrics = FrontendMetrics()
    metrics.record_app_query("ens", 0.010, is_default=False)
    metrics.record_selection("ens", ("m1", "m2"))
    metrics.record_selection("ens", ("m1",))
    metrics.record_weights("ens", {"m1": 3.0, "m2": 1.0})
    metrics.record_ensemble("ens", 1, 2, True)
    metrics.record_ensemble("ens", 1, 1, False)
    metrics.record_feedback("ens", True)
    metrics.record_selection("one", ("m1",))  # exp3: one model per query, no ensemble entries
    parsed = report(metrics)
    assert entry(parsed, "counters", "app:ens:selection:m1:choices") == {"count": "2"}
    assert entry(parsed, "counters", "app:ens:selection:m2:choices") == {"count": "1"}
    assert entry(parsed, "ratio_counters", "app:ens:selection:m1:weight") == {"ratio": "0.75"}
    assert entry(parsed, "ratio_counters", "app:ens:selection:m2:weight") == {"ratio": "0.25"}
    assert entry(parsed, "counters", "app:ens:selection_feedback_applied") == {"count": "1"}
    assert entry(parsed, "counters", "app:ens:selection_feedback_ignored") == {"count": "0"}
    assert entry(parsed, "counters", "app:ens:ensemble_members_asked") == {"count": "3"}
    assert entry(parsed, "counters", "app:ens:ensemble_members_answered") == {"count": "2"}
    assert entry(parsed, "counters", "app:ens:ensemble_low_confidence_answers") == {"count": "1"}
    completeness = float(entry(parsed, "ratio_counters", "app:ens:ensemble_completeness")["ratio"])
    assert completeness == pytest.approx(2 / 3)
    assert entry(parsed, "counters", "app:one:selection:m1:choices") == {"count": "1"}
    names = {name for items in parsed.values() for item in items for name in item}
    assert not any(name.startswith("app:one:ensemble") for name in names)
    # The original's entries come first, in their order; ours follow.
    counters = [name for item in parsed["counters"] for name in item]
    assert counters.index("app:ens:num_predictions") < counters.index("app:ens:selection:m1:choices")
    metrics.remove_app("ens")
    assert "app:ens:" not in metrics.render_json_report().decode()


def test_removed_app_and_model_leave_both_views() -> None:
    metrics = FrontendMetrics()
    metrics.record_app_query("gone", 0.001, False)
    metrics.add_model("m:1")
    metrics.remove_app("gone")
    metrics.remove_model("m:1")
    body = metrics.render_json_report().decode()
    assert "app:gone:" not in body and "model:m:1:" not in body
    assert not any(dict(labels).get("app") == "gone" for _, labels in samples(metrics))


def test_add_app_creates_zeroed_metrics() -> None:
    metrics = FrontendMetrics()
    metrics.add_app("fresh")
    assert entry(report(metrics), "counters", "app:fresh:num_predictions") == {"count": "0"}
    assert samples(metrics)[("clipper_app_requests_total", (("app", "fresh"),))] == 0


def test_prometheus_names_and_values() -> None:
    metrics = FrontendMetrics()
    metrics.record_app_query("a", 0.004, False)
    metrics.record_app_query("a", 0.2, True)
    stats = metrics.add_model("m:1", gauges=lambda: (7, 2))
    metrics.record_cache_lookup(stats, "hit")
    metrics.record_cache_lookup(stats, "coalesced")
    metrics.record_batch(stats, 5, 0.003)
    metrics.rpc_messages = lambda: {("sent", "predict_request"): 3, ("received", "heartbeat"): 9}
    got = samples(metrics)
    app = (("app", "a"),)
    model = (("model", "m:1"),)
    assert got[("clipper_app_requests_total", app)] == 2
    assert got[("clipper_app_default_predictions_total", app)] == 1
    assert got[("clipper_app_prediction_latency_seconds_count", app)] == 2
    assert got[("clipper_app_prediction_latency_seconds_bucket", (("app", "a"), ("le", "0.005")))] == 1
    assert got[("clipper_app_prediction_latency_seconds_bucket", (("app", "a"), ("le", "+Inf")))] == 2
    assert got[("clipper_app_prediction_latency_seconds_sum", app)] == pytest.approx(0.204)
    assert got[("clipper_model_batch_size_count", model)] == 1
    assert got[("clipper_model_batch_size_sum", model)] == 5
    assert got[("clipper_model_batch_size_bucket", (("le", "4.0"), ("model", "m:1")))] == 0
    assert got[("clipper_model_batch_size_bucket", (("le", "8.0"), ("model", "m:1")))] == 1
    assert got[("clipper_model_predictions_total", model)] == 5
    assert got[("clipper_model_queue_length", model)] == 7
    assert got[("clipper_model_inflight_batches", model)] == 2
    assert got[("clipper_model_cache_lookups_total", (("model", "m:1"), ("result", "hit")))] == 1
    assert got[("clipper_model_cache_lookups_total", (("model", "m:1"), ("result", "coalesced")))] == 1
    assert got[("clipper_model_cache_lookups_total", (("model", "m:1"), ("result", "miss")))] == 0
    assert got[("clipper_rpc_messages_total", (("direction", "sent"), ("type", "predict_request")))] == 3


class _Oracle:
    """prometheus_client's own rendering of the same holders: families from ``m.FAMILIES``."""

    def __init__(self, metrics: FrontendMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    @staticmethod
    def _family(spec: m.MetricFamily) -> Metric:
        kinds = {
            "counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily
        }
        return kinds[spec.kind](spec.name, spec.documentation, labels=list(spec.labels))

    @staticmethod
    def _buckets(holder: m._Buckets) -> tuple[list[tuple[str, float]], float]:
        buckets, total = [], 0
        for bound, count in zip([*holder.bounds, None], holder.counts, strict=True):
            total += count
            buckets.append(("+Inf" if bound is None else repr(float(bound)), float(total)))
        return buckets, holder.sum

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        families = {spec.name: self._family(spec) for spec in m.FAMILIES}
        for app in metrics.apps.values():
            families[m.APP_REQUESTS.name].add_metric([app.name], app.requests)
            families[m.APP_DEFAULTS.name].add_metric([app.name], app.defaults)
            families[m.APP_LATENCY.name].add_metric([app.name], *self._buckets(app.latency_buckets))
        for model in metrics.models.values():
            label = [model.label]
            families[m.MODEL_PREDICTIONS.name].add_metric(label, model.predictions)
            families[m.MODEL_BATCH_SIZE.name].add_metric(label, *self._buckets(model.batch_buckets))
            families[m.MODEL_LATENCY.name].add_metric(label, *self._buckets(model.latency_buckets))
            for result, count in (
                ("hit", model.cache_hits), ("miss", model.cache_misses), ("coalesced", model.cache_coalesced)
            ):
                families[m.MODEL_LOOKUPS.name].add_metric([model.label, result], count)
            if model.gauges is not None:
                queued, batches = model.gauges()
                families[m.MODEL_QUEUE.name].add_metric(label, queued)
                families[m.MODEL_INFLIGHT.name].add_metric(label, batches)
        if metrics.rpc_messages is not None:
            for (direction, kind), count in sorted(metrics.rpc_messages().items()):
                families[m.RPC_MESSAGES.name].add_metric([direction, kind], count)
        for stats in metrics.selection.values():
            for model, count in stats.choices.items():
                families[m.SELECTION_CHOICES.name].add_metric([stats.name, model], count)
            for model, weight in stats.weights.items():
                families[m.SELECTION_WEIGHT.name].add_metric([stats.name, model], weight)
            for result, count in stats.feedback.items():
                families[m.SELECTION_FEEDBACK.name].add_metric([stats.name, result], count)
            families[m.ENSEMBLE_ASKED.name].add_metric([stats.name], stats.asked)
            families[m.ENSEMBLE_ANSWERED.name].add_metric([stats.name], stats.answered)
            families[m.ENSEMBLE_LOW_CONFIDENCE.name].add_metric([stats.name], stats.low_confidence)
        yield from families.values()


def generate_latest_of(metrics: FrontendMetrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Oracle(metrics))
    return generate_latest(registry)


def test_prometheus_text_matches_generate_latest_byte_for_byte() -> None:
    """The fast writer must produce what prometheus_client writes for the same families,
    including escaped label values, counts past Go's exponent switch and fractional sums."""
    metrics = FrontendMetrics()
    assert metrics.render_prometheus()[0] == generate_latest_of(metrics)  # nothing recorded
    metrics.record_app_query('odd "app"\\name\nx', 0.0123, True)
    metrics.add_app("idle")
    busy = metrics.add_model("m:1", gauges=lambda: (2_000_000, 3))
    for _ in range(3):
        metrics.record_batch(busy, 1_500_000, 0.7)
    metrics.record_cache_lookup(busy, "miss")
    metrics.add_model("no-gauges:2")
    metrics.add_model("gone:1")
    metrics.remove_model("gone:1")
    metrics.rpc_messages = lambda: {("sent", "predict_request"): 12_345_678, ("received", "x"): 0}
    metrics.record_selection('ens "x"', ("m1", "m2"))
    metrics.record_selection('ens "x"', ("m1",))
    metrics.record_weights('ens "x"', {"m1": 1.0, "m2": 0.25})
    metrics.record_ensemble('ens "x"', 1, 2, True)
    metrics.record_feedback('ens "x"', True)
    body, _ = metrics.render_prometheus()
    assert body == generate_latest_of(metrics)
    assert b"e+06" in body and b'app="odd \\"app\\"' in body
    assert b'clipper_selection_weight{app="ens \\"x\\"",model="m2"} 0.2' in body
    # prometheus_client's parser reads every family of the table back, with its help text.
    parsed = {family.name: family for family in text_string_to_metric_families(body.decode())}
    assert [(f.name, f.type, f.documentation) for f in parsed.values()] == [
        (spec.name, spec.kind, spec.documentation) for spec in m.FAMILIES
    ]


def test_each_instance_has_its_own_metrics() -> None:
    first, second = FrontendMetrics(), FrontendMetrics()
    first.record_app_query("only-first", 0.001, False)
    assert ("clipper_app_requests_total", (("app", "only-first"),)) in samples(first)
    assert ("clipper_app_requests_total", (("app", "only-first"),)) not in samples(second)


# ---------------------------------------------------------------------------- formulas


def test_percentile_formula() -> None:
    values = [float(v) for v in range(1, 11)]  # n = 10
    assert percentile(values, 0.5) == pytest.approx(5.5)  # x = 5.5
    assert percentile(values, 0.95) == 10.0  # 0.95 >= 10/11 -> x = n
    assert percentile(values, 0.01) == 1.0  # rank <= 1/(n+1) -> x = 1
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)


def test_reservoir_keeps_a_bounded_uniform_sample() -> None:
    reservoir = Reservoir(100)
    for i in range(10_000):
        reservoir.add(float(i))
    assert reservoir.count == 10_000 and len(reservoir.values) == 100
    assert reservoir.report("x")["size"] == "100"
    assert 2000 < sum(reservoir.values) / 100 < 8000  # not just the first 100 values


def test_empty_reservoir_reports_zeros() -> None:
    fields = Reservoir(10).report("queries")
    assert fields["unit"] == "queries" and fields["size"] == "0"
    assert all(fields[k] == "0" for k in ("min", "max", "mean", "std_dev", "p50", "p95", "p99"))


def test_meter_ewma_ticks() -> None:
    meter = Meter(now=0.0)
    meter.mark(50, now=1.0)
    assert meter.report(now=2.0)["rate_1min"] == "-1"
    first = meter.report(now=METER_TICK_S)  # first tick: rate = 50 / 5 = 10
    assert float(first["rate_1min"]) == pytest.approx(10.0)
    assert float(first["rate"]) == pytest.approx(10.0)
    second = meter.report(now=2 * METER_TICK_S)  # idle tick: decays by (1 - alpha)
    alpha = 1 - math.exp(-METER_TICK_S / 60)
    assert float(second["rate_1min"]) == pytest.approx(10 * (1 - alpha))
    later = meter.report(now=12 * METER_TICK_S)
    assert float(later["rate_1min"]) == pytest.approx(10 * (1 - alpha) ** 11)


def test_report_writer_escapes_like_boost() -> None:
    body = render_report([("counters", [("app:a/b\u00e9\"", {"count": "1"})])]).decode()
    assert '"app:a\\/b\\u00C3\\u00A9\\"": {' in body
    assert render_report([("counters", [])]) == b""


def test_reservoir_report_is_reused_until_a_value_is_added() -> None:
    reservoir = Reservoir(8)
    for value in (10.0, 30.0):
        reservoir.add(value)
    first = reservoir.report("microseconds")
    assert reservoir.report("microseconds") == first
    first["mean"] = "changed by a caller"  # callers get a copy, never the cached report
    assert reservoir.report("microseconds")["mean"] == "20"
    assert reservoir.report("milliseconds")["unit"] == "milliseconds"
    reservoir.add(50.0)
    assert reservoir.report("microseconds")["mean"] == "30"
    assert reservoir.report("microseconds")["size"] == "3"
