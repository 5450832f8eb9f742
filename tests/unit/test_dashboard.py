"""The dashboard's pure parts: scrape parsing, digest numbers, query parsing, cluster JSON, cookie."""

from __future__ import annotations

import math

import pytest

from clipper_core.errors import BadRequest
from clipper_core.management_frontend.auth import dashboard_cookie_value
from clipper_core.management_frontend.dashboard.cluster import cluster_json
from clipper_core.management_frontend.dashboard.digest import digest, histogram_quantile
from clipper_core.management_frontend.dashboard.routes import parse_metrics_query
from clipper_core.management_frontend.dashboard.scrape import (
    DASHBOARD_FAMILIES,
    Histogram,
    merge_scrapes,
    parse_scrape,
)
from clipper_core.query_frontend.metrics import FAMILIES, FrontendMetrics
from clipper_core.settings import ManagementSettings
from clipper_core.state import AppInfo, ContainerInfo, InputType, ModelInfo


def test_the_dashboard_reads_families_the_query_frontend_writes() -> None:
    assert set(DASHBOARD_FAMILIES) <= {family.name for family in FAMILIES}


def _metrics() -> FrontendMetrics:
    metrics = FrontendMetrics()
    stats = metrics.add_model("m:1", gauges=lambda: (3, 1))
    for latency in (0.002, 0.004, 0.03):
        metrics.record_app_query("a", latency, is_default=False)
    metrics.record_app_query("a", 0.2, is_default=True)
    metrics.record_cache_lookup(stats, "hit")
    metrics.record_cache_lookup(stats, "miss")
    metrics.record_cache_lookup(stats, "miss")
    metrics.record_cache_lookup(stats, "coalesced")
    metrics.record_batch(stats, 2, 0.003)
    metrics.record_batch(stats, 1, 0.006)
    return metrics


def test_scrape_of_the_query_frontends_own_text() -> None:
    body, _ = _metrics().render_prometheus()
    scrape = parse_scrape(body.decode(), at_s=10.0, wall_s=1000.0)
    app = scrape.apps["a"]
    assert (app.requests, app.defaults, app.latency.count) == (4, 1, 4)
    assert app.latency.bounds[-1] == math.inf and app.latency.cumulative[-1] == 4
    model = scrape.models["m:1"]
    assert (model.predictions, model.cache_hits, model.cache_misses, model.cache_coalesced) == (3, 1, 2, 1)
    assert (model.queue_length, model.inflight_batches) == (3, 1)
    assert (model.batch_size.sum, model.batch_size.count) == (3, 2)


def test_histogram_quantile_interpolates_within_the_bucket_as_prometheus() -> None:
    histogram = Histogram((0.1, 0.2, 0.4, math.inf), (0, 10, 20, 20), 0.0, 20)
    assert histogram_quantile(0.5, histogram) == pytest.approx(0.2)
    assert histogram_quantile(0.25, histogram) == pytest.approx(0.15)
    assert histogram_quantile(0.75, histogram) == pytest.approx(0.3)
    # The +Inf bucket answers the highest finite bound.
    assert histogram_quantile(0.99, Histogram((0.1, math.inf), (1, 4), 0.0, 4)) == pytest.approx(0.1)
    assert histogram_quantile(0.5, Histogram((0.1, math.inf), (0, 0), 0.0, 0)) is None


def test_digest_totals_windows_and_series() -> None:
    metrics = _metrics()
    first = parse_scrape(metrics.render_prometheus()[0].decode(), at_s=0.0, wall_s=100.0)
    for _ in range(10):
        metrics.record_app_query("a", 0.002, is_default=False)
    metrics.record_batch(metrics.models["m:1"], 4, 0.003)
    second = parse_scrape(metrics.render_prometheus()[0].decode(), at_s=2.0, wall_s=102.0)
    numbers = digest([first, second], window_s=60.0)
    app = numbers["apps"]["a"]  # type: ignore[index, call-overload]
    assert app["total"]["requests"] == 14 and app["total"]["slo_misses"] == 1
    assert app["window"]["qps"] == pytest.approx(5.0)  # 10 queries in 2 s
    assert app["window"]["slo_misses"] == 0
    assert 1.0 <= app["window"]["p99_ms"] <= 2.5  # all ten in the (1 ms, 2.5 ms] bucket
    assert app["series"] == {
        "t": [102000], "qps": [5.0], "p50_ms": [app["window"]["p50_ms"]],
        "p99_ms": [app["window"]["p99_ms"]], "slo_misses": [0.0], "slo_miss_ratio": [0.0],
    }
    model = numbers["models"]["m:1"]  # type: ignore[index, call-overload]
    assert model["total"]["mean_batch_size"] == pytest.approx(7 / 3)
    assert model["total"]["cache_hit_ratio"] == pytest.approx(1 / 4)
    assert model["window"]["mean_batch_size"] == 4
    assert model["window"]["throughput"] == pytest.approx(2.0)
    assert numbers["window_s"] == 2.0 and numbers["sampled_at"] == 102000


def test_digest_counts_a_restarted_frontend_from_zero() -> None:
    before = _metrics()
    for _ in range(100):
        before.record_app_query("a", 0.002, is_default=False)
    first = parse_scrape(before.render_prometheus()[0].decode(), at_s=0.0, wall_s=0.0)
    second = parse_scrape(_metrics().render_prometheus()[0].decode(), at_s=4.0, wall_s=4.0)
    window = digest([first, second], 60.0)["apps"]["a"]["window"]  # type: ignore[index, call-overload]
    assert window["qps"] == pytest.approx(1.0)  # 4 queries since the restart, not -100


def test_scrapes_of_several_frontends_are_summed() -> None:
    one, two = _metrics(), _metrics()
    two.record_app_query("a", 0.002, is_default=False)
    two.record_app_query("b", 0.002, is_default=True)
    merged = merge_scrapes([
        parse_scrape(m.render_prometheus()[0].decode(), at_s=1.0, wall_s=1.0) for m in (one, two)
    ])
    assert (merged.apps["a"].requests, merged.apps["a"].defaults) == (9, 2)
    assert merged.apps["a"].latency.cumulative[-1] == 9 and merged.apps["b"].requests == 1
    model = merged.models["m:1"]
    assert (model.predictions, model.cache_hits, model.queue_length) == (6, 2, 6)
    assert (model.batch_size.sum, model.batch_size.count) == (6, 4)


def test_digest_of_nothing_and_of_one_scrape() -> None:
    assert digest([], 60.0)["apps"] == {}
    only = parse_scrape(_metrics().render_prometheus()[0].decode(), at_s=0.0, wall_s=0.0)
    app = digest([only], 60.0)["apps"]["a"]  # type: ignore[index, call-overload]
    assert app["total"]["requests"] == 4 and app["window"]["qps"] is None and app["series"]["t"] == []


def test_metrics_query_parsing() -> None:
    assert parse_metrics_query({}).window_s == 60.0
    assert parse_metrics_query({"window_s": "30"}).window_s == 30.0
    for bad in ({"window_s": "x"}, {"window_s": "0"}, {"window_s": "9999"}, {"other": "1"}):
        with pytest.raises(BadRequest):
            parse_metrics_query(bad)


def test_cluster_json_versions_replicas_and_health() -> None:
    doubles = InputType.DOUBLES
    apps = [(AppInfo("a", doubles, "-1", 100000), ["m"])]
    models = [ModelInfo("m", "1", doubles), ModelInfo("m", "2", doubles), ModelInfo("n", "1", doubles)]
    containers = [ContainerInfo("m", "2", 1, 5, doubles), ContainerInfo("m", "2", 0, 4, doubles)]
    cluster = cluster_json(apps, models, {"m": "2", "n": "1"}, containers)
    assert cluster["apps"] == [{
        "name": "a", "input_type": "doubles", "policy": "DefaultOutputSelectionPolicy",
        "latency_slo_micros": 100000, "default_output": "-1", "linked_models": ["m"],
    }]
    m, n = cluster["models"]  # type: ignore[misc]
    assert [v["version"] for v in m["versions"]] == ["2", "1"]  # current first
    assert m["versions"][0]["replicas"] == [
        {"replica_id": 0, "state": "connected"}, {"replica_id": 1, "state": "connected"}
    ]
    assert [v["health"] for v in m["versions"]] == ["ok", "idle"]
    assert n["versions"][0]["health"] == "down"  # current, nothing connected


def test_dashboard_cookie_is_not_the_token() -> None:
    cookie = dashboard_cookie_value("secret")
    assert cookie != "secret" and "secret" not in cookie
    assert cookie == dashboard_cookie_value("secret") != dashboard_cookie_value("other")


def test_query_frontend_address_setting() -> None:
    assert ManagementSettings.parse([], {}).query_frontends == ()
    settings = ManagementSettings.parse(["--query_frontend_address", "127.0.0.1:1337"], {})
    assert settings.query_frontends == (("127.0.0.1", 1337),)
    env = {"CLIPPER_QUERY_FRONTEND_ADDRESS": "[::1]:9, localhost:10"}
    assert ManagementSettings.parse([], env).query_frontends == (("::1", 9), ("localhost", 10))
    with pytest.raises(SystemExit):
        ManagementSettings.parse(["--query_frontend_address", "nohost"], {})
