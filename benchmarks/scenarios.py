"""The scenarios of DESIGN.md section 5, each returning plain figures for the report.

Every throughput figure is compared with the bare aiohttp reference server measured in the same
run. Because the 2 cores are shared with the load generator (and, on a busy machine, with other
work), the ratio scenarios interleave short rounds (reference, frontend, reference, frontend, ...)
and compare medians, so a burst of outside load hits both sides alike.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import numpy as np
import psutil
import requests

from benchmarks import loadgen
from benchmarks.cluster import (
    LOOPBACK,
    MODEL_VERSION,
    Cluster,
    child_env,
    free_port,
    rss_bytes,
    stop_process,
    wait_for_port,
)
from benchmarks.loadgen import LoadResult
from benchmarks.metrics_probe import MetricsSampler, read_cache_hits, read_prometheus

logger = logging.getLogger(__name__)

MIB = 1024 * 1024


@dataclass(frozen=True)
class BenchConfig:
    """Loads and durations; ``smoke`` is a seconds-long run that only proves the harness works."""

    duration_s: float
    rounds: int
    concurrencies: tuple[int, ...]
    batch_concurrency: int
    batch_sizes: tuple[int, ...]
    overload_duration_s: float
    memory_apps: int
    noop_slo_us: int = 100_000
    batch_slo_us: int = 50_000
    slow_slo_us: int = 50_000
    smoke: bool = False

    @classmethod
    def full(cls) -> BenchConfig:
        return cls(duration_s=5, rounds=5, concurrencies=(1, 32, 128), batch_concurrency=64,
                   batch_sizes=(1, 4, 16, 64), overload_duration_s=10, memory_apps=100)

    @classmethod
    def smoke_config(cls) -> BenchConfig:
        return cls(duration_s=1, rounds=1, concurrencies=(1, 8), batch_concurrency=8,
                   batch_sizes=(1, 4), overload_duration_s=1.5, memory_apps=3, smoke=True)


class ReferenceServer:
    """The bare aiohttp server as a child process for the whole run (idle, it costs nothing)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.reference_server", "--port", str(self.port)],
            env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 15, process=self.process)

    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/ref/predict"

    def close(self) -> None:
        stop_process(self.process)


def _median(results: list[LoadResult], attribute: str = "goodput_qps") -> float:
    return statistics.median(getattr(r, attribute) for r in results)


def interleaved(
    config: BenchConfig, runs: dict[str, Callable[[], LoadResult]]
) -> dict[str, list[LoadResult]]:
    """Run every named load once per round, in turn, for ``config.rounds`` rounds."""
    results: dict[str, list[LoadResult]] = {name: [] for name in runs}
    for _ in range(config.rounds):
        for name, run in runs.items():
            results[name].append(run())
    return results


def with_cpu(run: Callable[[], LoadResult], pids: dict[str, int]) -> Callable[[], LoadResult]:
    """Wrap a load run to also record the CPU time each server process spent per request.

    CPU microseconds per request hardly depend on what else the machine runs, unlike qps, so they
    show the serving cost even on a busy host."""

    def cpu_seconds(pid: int) -> float:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)

    def measured() -> LoadResult:
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result = run()
        for name, pid in pids.items():
            spent = cpu_seconds(pid) - before[name]
            result.extra[f"cpu_us_per_request_{name}"] = (
                round(spent / result.requests * 1e6, 1) if result.requests else 0.0)
        return result

    return measured


def summary(results: list[LoadResult]) -> dict[str, object]:
    """Median figures over rounds plus every round's raw result."""
    cpu = {key: round(statistics.median(r.extra[key] for r in results), 1)
           for key in results[0].extra if key.startswith("cpu_us_per_request_")}
    return {
        **cpu,
        "qps": round(_median(results, "qps"), 1),
        "goodput_qps": round(_median(results, "goodput_qps"), 1),
        "p50_ms": round(_median(results, "p50_ms"), 3),
        "p99_ms": round(_median(results, "p99_ms"), 3),
        "defaults": sum(r.defaults for r in results),
        "errors": sum(r.errors for r in results),
        "rounds": [r.to_dict() for r in results],
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator > 0 else 0.0


def _mean_batch(before: tuple[float | None, ...], after: tuple[float | None, ...]) -> float | None:
    """Mean batch size between two Prometheus readings of (sum, count, queue)."""
    if None in (before[0], before[1], after[0], after[1]):
        return None
    batches = after[1] - before[1]  # type: ignore[operator]
    return round((after[0] - before[0]) / batches, 2) if batches else None  # type: ignore[operator]


# ---- load generator check ------------------------------------------------------------------
def loadgen_check(config: BenchConfig, reference: ReferenceServer) -> dict[str, object]:
    """wrk versus the Python closed-loop client against the bare server: the faster one is chosen."""
    concurrency = max(config.concurrencies[:2])
    if not loadgen.wrk_available():
        return {"concurrency": concurrency, "wrk": None, "note": "wrk not installed or disabled"}
    wrk = loadgen.run_wrk(reference.url(), concurrency, config.duration_s)
    python = loadgen.run_python_closed_loop(reference.url(), concurrency, config.duration_s)
    return {"concurrency": concurrency, "wrk": wrk.to_dict(), "python_aiohttp": python.to_dict(),
            "wrk_over_python": ratio(wrk.qps, python.qps)}


# ---- (a) no-op overhead, (c) cache hits, concurrency-1 batching cost -------------------------
def noop_and_cache(config: BenchConfig, cluster: Cluster, reference: ReferenceServer) -> dict[str, object]:
    noop = cluster.deploy("noop", "noop", "noop", slo_micros=config.noop_slo_us, batch_size=-1)
    cluster.deploy("noopfixed1", "noopfixed1", "noop", slo_micros=config.noop_slo_us, batch_size=1)
    d = config.duration_s
    reference_pids = {"server": reference.process.pid}
    frontend_pids = {"frontend": cluster.query_pid, "container": noop.process.pid}
    noop_url = cluster.predict_url("noop")
    figures: dict[str, object] = {"by_concurrency": {}}
    for concurrency in config.concurrencies:
        runs = {
            "reference": with_cpu(lambda c=concurrency: loadgen.run_closed_loop(reference.url(), c, d),
                                  reference_pids),
            "frontend": with_cpu(lambda c=concurrency: loadgen.run_closed_loop(noop_url, c, d),
                                 frontend_pids),
        }
        if concurrency == 1:
            fixed_url = cluster.predict_url("noopfixed1")
            runs["frontend_fixed_batch_1"] = lambda u=fixed_url: loadgen.run_closed_loop(u, 1, d)
        text = cluster.metrics_prometheus()
        before, hits_before = read_prometheus(text, "noop"), read_cache_hits(text, "noop")
        measured = {name: summary(results) for name, results in interleaved(config, runs).items()}
        text = cluster.metrics_prometheus()
        measured["frontend_mean_batch_size"] = _mean_batch(before, read_prometheus(text, "noop"))
        # Inputs are unique per request, so this should stay 0: the no-op figures are not cache hits.
        measured["frontend_cache_hits"] = read_cache_hits(text, "noop") - hits_before
        measured["ratio_to_reference"] = ratio(
            measured["frontend"]["goodput_qps"], measured["reference"]["goodput_qps"]
        )
        if concurrency == 1:
            measured["adaptive_over_fixed_batch_1"] = ratio(
                measured["frontend"]["goodput_qps"], measured["frontend_fixed_batch_1"]["goodput_qps"]
            )
        figures["by_concurrency"][str(concurrency)] = measured

    # Cache hits: every request carries the same input, so all but the first are hits.
    concurrency = max(c for c in config.concurrencies if c <= 32)
    requests.post(cluster.predict_url("noop"), json={"input": [1.5]}, timeout=5)
    runs = {
        "reference": with_cpu(lambda: loadgen.run_closed_loop(
            reference.url(), concurrency, d, same_input=True), reference_pids),
        "frontend_cache_hits": with_cpu(lambda: loadgen.run_closed_loop(
            cluster.predict_url("noop"), concurrency, d, same_input=True), frontend_pids),
    }
    cache = {name: summary(results) for name, results in interleaved(config, runs).items()}
    cache["concurrency"] = concurrency
    cache["ratio_to_reference"] = ratio(
        cache["frontend_cache_hits"]["goodput_qps"], cache["reference"]["goodput_qps"]
    )
    figures["cache"] = cache
    return figures


# ---- (b) batch-friendly model: adaptive versus fixed batch sizes ------------------------------
def batching(config: BenchConfig, cluster: Cluster, kind: str = "batch") -> dict[str, object]:
    """Every setting gets its own model and replica; rounds interleave the settings so outside
    load hits them alike. Batch sizes over time come from the first round (the adaptive one
    starts cold there). ``kind``: ``batch`` (CPU-bound, the target's model) or ``batch_sleep``."""
    variants = [("adaptive", -1)] + [(f"fixed_{b}", b) for b in config.batch_sizes]
    prefix = kind.replace("_", "")
    names = {label: f"{prefix}{label.replace('_', '')}" for label, _ in variants}
    replicas = [
        cluster.deploy(names[label], names[label], kind, slo_micros=config.batch_slo_us,
                       batch_size=batch_size)
        for label, batch_size in variants
    ]
    results: dict[str, list[LoadResult]] = {label: [] for label, _ in variants}
    samplers: dict[str, list[MetricsSampler]] = {label: [] for label, _ in variants}
    for _ in range(max(1, config.rounds // 2)):
        for label, _ in variants:
            with MetricsSampler(cluster, names[label]) as sampler:
                results[label].append(loadgen.run_closed_loop(
                    cluster.predict_url(names[label]), config.batch_concurrency, config.duration_s * 1.5))
            samplers[label].append(sampler)
    for replica in replicas:
        cluster.stop_replica(replica)
    figures: dict[str, object] = {"model": kind, "concurrency": config.batch_concurrency,
                                  "slo_ms": config.batch_slo_us / 1000, "variants": {}}
    for label, batch_size in variants:
        series = samplers[label][0].batch_series()
        sizes = [size for sampler in samplers[label] for _, size in sampler.batch_series()]
        queues = [q for q in (s.max_queue_length() for s in samplers[label]) if q is not None]
        figures["variants"][label] = {
            "batch_size_setting": batch_size,
            **summary(results[label]),
            "batch_size_over_time": [[round(t, 2), round(s, 2)] for t, s in series],
            "batch_size_median": round(statistics.median(sizes), 2) if sizes else None,
            "max_queue_length": max(queues) if queues else None,
        }
    return figures


# ---- (d) overload at 2x capacity --------------------------------------------------------------
def overload(config: BenchConfig, cluster: Cluster) -> dict[str, object]:
    cluster.deploy("slow", "slow", "slow", slo_micros=config.slow_slo_us, batch_size=-1)
    url = cluster.predict_url("slow")
    capacity = loadgen.run_closed_loop(url, 8, config.duration_s)
    capacity_qps = max(capacity.goodput_qps, 10.0)
    bound_ms = config.slow_slo_us / 1000 + 5
    rss_before = rss_bytes(cluster.query_pid)
    with MetricsSampler(cluster, "slow", period_s=0.5) as sampler:
        result = loadgen.run_open_loop_process(url, 2 * capacity_qps, config.overload_duration_s, bound_ms)
    time.sleep(1.0)  # let late model replies drain before the "after" reading
    rss_after = rss_bytes(cluster.query_pid)
    load = result.load
    return {
        "capacity_closed_loop": capacity.to_dict(),
        "offered_qps": round(2 * capacity_qps, 1),
        "slo_ms": config.slow_slo_us / 1000,
        "bound_ms": bound_ms,
        "answered": load.requests,
        "errors": load.errors,
        "share_within_bound": round(result.within_ms_share, 4),
        "share_within_bound_from_schedule": round(result.within_ms_share_from_schedule, 4),
        "share_default": round(load.defaults / load.requests, 4) if load.requests else 0.0,
        "p50_ms": round(load.p50_ms, 2),
        "p99_ms": round(load.p99_ms, 2),
        "max_ms": round(load.max_ms, 2),
        "generator_max_send_lag_ms": round(result.max_send_lag_ms, 2),
        "max_queue_length": sampler.max_queue_length(),
        "batch_size_over_time": [[round(t, 2), round(s, 2)] for t, s in sampler.batch_series()],
        "rss_before_mb": round(rss_before / MIB, 1),
        "rss_during_max_mb": round((sampler.max_rss_bytes() or 0) / MIB, 1),
        "rss_after_mb": round(rss_after / MIB, 1),
    }


# ---- (e) memory ---------------------------------------------------------------------------------
def _closure_dir(work_dir: Path) -> Path:
    path = work_dir / "closure_model"
    path.mkdir(parents=True, exist_ok=True)

    def predict(inputs: list[np.ndarray]) -> list[str]:
        return [str(float(np.sum(x))) for x in inputs]

    (path / "func.pkl").write_bytes(cloudpickle.dumps(predict))
    return path


def memory(config: BenchConfig, work_dir: Path) -> dict[str, object]:
    """A fresh cluster: one closure replica (whole-cluster RSS), one no-op replica (runtime RSS),
    then ``memory_apps`` apps + models (query frontend RSS)."""
    with Cluster(work_dir / "memory") as cluster:
        cluster.add_app("closure", config.noop_slo_us)
        cluster.add_model("closure")
        cluster.link("closure", "closure")
        closure = cluster.start_closure_replica("closure", _closure_dir(cluster.work_dir))
        cluster.wait_until_served("closure")
        time.sleep(0.5)
        parts = {name: rss_bytes(pid) for name, pid in cluster.pids().items()}
        parts["closure_replica"] = rss_bytes(closure.process.pid)
        whole = sum(parts.values())
        noop = cluster.deploy("noop", "noop", "noop", slo_micros=config.noop_slo_us, batch_size=-1)
        runtime = rss_bytes(noop.process.pid)
        qf_before = rss_bytes(cluster.query_pid)
        for index in range(config.memory_apps):
            name = f"app{index}"
            cluster.add_app(name, config.noop_slo_us)
            cluster.add_model(f"model{index}")
            cluster.link(name, f"model{index}")
        # One query per app creates its per-app state (metrics, registry entries) in the frontend.
        for index in range(config.memory_apps):
            requests.post(cluster.predict_url(f"app{index}"), json={"input": [1.5]}, timeout=10)
        time.sleep(1.0)
        qf_after = rss_bytes(cluster.query_pid)
        return {
            "whole_cluster_mb": round(whole / MIB, 1),
            "whole_cluster_parts_mb": {k: round(v / MIB, 1) for k, v in parts.items()},
            "container_runtime_noop_mb": round(runtime / MIB, 1),
            "query_frontend_before_apps_mb": round(qf_before / MIB, 1),
            "query_frontend_with_apps_mb": round(qf_after / MIB, 1),
            "apps": config.memory_apps + 2,
            "models": config.memory_apps + 2,
            "model_version": MODEL_VERSION,
        }
