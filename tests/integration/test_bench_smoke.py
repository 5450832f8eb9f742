"""`make bench-smoke` inside `make test`: the benchmark harness runs end to end on a real cluster.

No speed is asserted (2 shared cores); only that every scenario ran, produced figures and got
real (non-default) answers where the model is fast, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

SMOKE_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    out_dir = tmp_path_factory.mktemp("bench-smoke")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    report = json.loads((out_dir / "smoke.json").read_text(encoding="utf-8"))
    return report, out_dir, output


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 30)
def test_every_scenario_ran_without_errors(smoke_report: tuple[dict, Path, str]) -> None:
    report, _, output = smoke_report
    assert report["kind"] == "smoke"
    assert report["errors"] == {}, output
    assert set(report["figures"]) == {"loadgen_check", "noop", "batching", "overload", "after_load", "memory"}
    assert "targets" not in report
    assert report["machine"]["cpu_count"] >= 1


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 30)
def test_fast_paths_answer_with_real_outputs(smoke_report: tuple[dict, Path, str]) -> None:
    figures = smoke_report[0]["figures"]
    for concurrency, measured in figures["noop"]["by_concurrency"].items():
        for side in ("reference", "frontend"):
            assert measured[side]["goodput_qps"] > 0, (concurrency, side)
            assert measured[side]["errors"] == 0, (concurrency, side)
        # Most answers come from the model; a rare SLO default on a loaded machine is not a failure.
        rounds = measured["frontend"]["rounds"]
        assert measured["frontend"]["defaults"] * 2 < sum(r["requests"] for r in rounds), concurrency
        assert measured["ratio_to_reference"] > 0
        # Unique inputs per request and per run: the no-op figures must not come from the cache.
        assert measured["frontend_cache_hits"] == 0, concurrency
    assert figures["noop"]["by_concurrency"]["1"]["adaptive_over_fixed_batch_1"] > 0
    cache = figures["noop"]["cache"]
    assert cache["frontend_cache_hits"]["goodput_qps"] > 0
    hits = cache["frontend_cache_hits"]
    assert hits["defaults"] * 2 < sum(r["requests"] for r in hits["rounds"])


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 30)
def test_batching_overload_and_memory_figures(smoke_report: tuple[dict, Path, str]) -> None:
    report, out_dir, _ = smoke_report
    figures = report["figures"]
    variants = figures["batching"]["variants"]
    assert set(variants) == {"adaptive", "fixed_1", "fixed_4"}
    for label, variant in variants.items():
        assert sum(r["requests"] for r in variant["rounds"]) > 0, (label, variant)
        assert variant["batch_size_over_time"], (label, variant)
    fixed_1 = variants["fixed_1"]["batch_size_over_time"]
    assert all(size == 1 for _, size in fixed_1), fixed_1
    overload = figures["overload"]
    assert overload["answered"] > 0, overload
    assert 0.0 <= overload["share_within_bound"] <= 1.0
    assert overload["rss_after_mb"] > 0
    memory = figures["memory"]
    for key in ("whole_cluster_mb", "container_runtime_noop_mb", "query_frontend_with_apps_mb"):
        assert memory[key] > 0, (key, memory)
    assert (out_dir / "latency_vs_throughput.png").stat().st_size > 0
    assert (out_dir / "batch_size_over_time.png").stat().st_size > 0
