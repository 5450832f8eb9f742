"""Targets of DESIGN.md section 5, the stdout table, ``results/latest.json`` and the PNG plots."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR: Path = Path(__file__).with_name("results")
LIBRARIES = ("aiohttp", "httptools", "pyzmq", "redis", "orjson", "uvloop", "numpy", "matplotlib", "psutil")
RSS_GROWTH_LIMIT_MB = 10.0
# DESIGN.md section 5: the frontend's p99 at 32 clients against the bare server's in the same run.
P99_RATIO_LIMIT = 1.5


@dataclass(frozen=True)
class Target:
    name: str
    requirement: str
    measured: Any
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "requirement": self.requirement, "measured": self.measured,
                "result": "pass" if self.passed else "fail"}


def machine() -> dict[str, Any]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "libraries": versions,
    }


def _get(figures: dict[str, Any], *path: str) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def evaluate_targets(figures: dict[str, Any]) -> list[Target]:
    """Each DESIGN.md section 5 target as pass/fail; a figure that is missing fails."""
    targets: list[Target] = []

    def add(name: str, requirement: str, measured: Any, check: bool) -> None:
        targets.append(Target(name, requirement, measured, bool(measured is not None and check)))

    c32 = _get(figures, "noop", "by_concurrency", "32") or {}
    ratio_32 = c32.get("ratio_to_reference")
    add("noop_c32_throughput_vs_reference", ">= 0.60", ratio_32, ratio_32 is not None and ratio_32 >= 0.60)
    # A ratio, not milliseconds: an absolute bound fails on a slow or busy host while the ratio holds.
    p99 = _get(c32, "frontend", "p99_ms")
    reference_p99 = _get(c32, "reference", "p99_ms")
    p99_ratio = round(p99 / reference_p99, 2) if p99 is not None and reference_p99 else None
    add("noop_c32_p99_vs_reference", f"<= {P99_RATIO_LIMIT} x reference p99", p99_ratio,
        p99_ratio is not None and p99_ratio <= P99_RATIO_LIMIT)

    ratio_1 = _get(figures, "noop", "by_concurrency", "1", "ratio_to_reference")
    add("noop_c1_throughput_vs_reference", ">= 0.60", ratio_1, ratio_1 is not None and ratio_1 >= 0.60)
    c1 = _get(figures, "noop", "by_concurrency", "1", "adaptive_over_fixed_batch_1")
    add("c1_adaptive_vs_fixed_batch_1", ">= 0.80", c1, c1 is not None and c1 >= 0.80)

    variants = _get(figures, "batching", "variants") or {}
    adaptive = variants.get("adaptive")
    fixed = {k: v for k, v in variants.items() if k.startswith("fixed_")}
    if adaptive and fixed:
        best_label, best = max(fixed.items(), key=lambda kv: kv[1]["goodput_qps"])
        vs_best = round(adaptive["goodput_qps"] / best["goodput_qps"], 3) if best["goodput_qps"] else None
        add("batch_adaptive_vs_best_fixed", f">= 0.90 (best fixed: {best_label})", vs_best,
            vs_best is not None and vs_best >= 0.90)
        one = fixed.get("fixed_1")
        vs_one = None
        if one and one["goodput_qps"]:
            vs_one = round(adaptive["goodput_qps"] / one["goodput_qps"], 2)
        add("batch_adaptive_vs_fixed_1", ">= 10", vs_one, vs_one is not None and vs_one >= 10)
        slo = _get(figures, "batching", "slo_ms")
        add("batch_adaptive_p99_within_slo", f"<= {slo} ms", adaptive["p99_ms"],
            slo is not None and adaptive["p99_ms"] <= slo)
    else:
        add("batch_adaptive_vs_best_fixed", ">= 0.90", None, False)

    cache = _get(figures, "noop", "cache", "ratio_to_reference")
    add("cache_hits_vs_reference", ">= 0.80", cache, cache is not None and cache >= 0.80)

    over = figures.get("overload") or {}
    share = over.get("share_within_bound")
    add("overload_all_answered_by_slo_plus_5ms", "share == 1.0 (from send time), no errors", share,
        share is not None and share >= 1.0 and over.get("errors") == 0)
    queue = over.get("max_queue_length")
    queue_bound = None
    if over.get("offered_qps") is not None:
        # Only unexpired queries may wait: at most one SLO window (plus the 5 ms margin) of arrivals.
        queue_bound = round(over["offered_qps"] * over["bound_ms"] / 1000 + 16)
    add("overload_queue_bounded", f"max queue <= {queue_bound} (offered x (SLO + 5 ms) + 16)", queue,
        queue is not None and queue_bound is not None and queue <= queue_bound)
    growth = None
    if over.get("rss_after_mb") is not None:
        growth = round(over["rss_after_mb"] - over["rss_before_mb"], 1)
    add("overload_memory_flat", f"RSS growth <= {RSS_GROWTH_LIMIT_MB} MB", growth,
        growth is not None and growth <= RSS_GROWTH_LIMIT_MB)

    mem = figures.get("memory") or {}
    qf = mem.get("query_frontend_with_apps_mb")
    add("memory_query_frontend_100_apps_mb", "<= 150", qf, qf is not None and qf <= 150)
    runtime = mem.get("container_runtime_noop_mb")
    add("memory_container_runtime_mb", "<= 60 (no-op model)", runtime, runtime is not None and runtime <= 60)
    whole = mem.get("whole_cluster_mb")
    add("memory_whole_cluster_mb", "<= 300", whole, whole is not None and whole <= 300)
    return targets


def table(figures: dict[str, Any], targets: list[Target] | None) -> str:
    lines = [f"{'scenario':52} {'qps':>9} {'good/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7} "
             f"{'cpu us/req':>10}"]

    def row(label: str, r: dict[str, Any] | None, ratio_value: Any = "") -> None:
        if r:
            # CPU per request of the serving process (bare server or query frontend), if measured.
            cpu = r.get("cpu_us_per_request_server", r.get("cpu_us_per_request_frontend", ""))
            lines.append(f"{label:52} {r['qps']:>9.0f} {r['goodput_qps']:>9.0f} {r['p50_ms']:>8.2f} "
                         f"{r['p99_ms']:>8.2f} {ratio_value!s:>7} {cpu!s:>10}")

    for concurrency, m in (_get(figures, "noop", "by_concurrency") or {}).items():
        row(f"reference c={concurrency}", m.get("reference"))
        row(f"no-op adaptive c={concurrency} (mean batch {m.get('frontend_mean_batch_size')})",
            m.get("frontend"), m.get("ratio_to_reference"))
        if "frontend_fixed_batch_1" in m:
            row(f"no-op fixed batch 1 c={concurrency}", m["frontend_fixed_batch_1"],
                m.get("adaptive_over_fixed_batch_1"))
    cache = _get(figures, "noop", "cache") or {}
    row(f"reference same input c={cache.get('concurrency')}", cache.get("reference"))
    row(f"cache hits c={cache.get('concurrency')}", cache.get("frontend_cache_hits"),
        cache.get("ratio_to_reference"))
    for scenario, what in (("batching", "batch-friendly"), ("batching_sleep", "sleeping batch")):
        for label, v in (_get(figures, scenario, "variants") or {}).items():
            row(f"{what} {label} c={figures[scenario]['concurrency']} (median batch "
                f"{v.get('batch_size_median')})", v)
    over = figures.get("overload")
    if over:
        lines.append(f"overload: offered {over['offered_qps']} qps, within {over['bound_ms']} ms "
                     f"{over['share_within_bound']:.2%}, defaults {over['share_default']:.2%}, max queue "
                     f"{over['max_queue_length']}, RSS {over['rss_before_mb']} -> {over['rss_after_mb']} MB")
    mem = figures.get("memory")
    if mem:
        lines.append(f"memory: query frontend {mem['query_frontend_with_apps_mb']} MB with "
                     f"{mem['apps']} apps, runtime {mem['container_runtime_noop_mb']} MB, "
                     f"whole cluster {mem['whole_cluster_mb']} MB")
    after_load = figures.get("after_load")
    if after_load:
        rss = after_load['query_frontend_rss_mb']
        lines.append(f"query frontend RSS after every load scenario: {rss} MB")
    check = figures.get("loadgen_check")
    if check and check.get("wrk"):
        lines.append(f"load generator: wrk {check['wrk']['qps']:.0f} qps vs python "
                     f"{check['python_aiohttp']['qps']:.0f} qps on the bare server")
    if targets:
        lines.append("")
        lines.append(f"{'target':44} {'requirement':48} {'measured':>10} result")
        for t in targets:
            verdict = "PASS" if t.passed else "FAIL"
            lines.append(f"{t.name:44} {t.requirement:48} {t.measured!s:>10} {verdict}")
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def plot(figures: dict[str, Any], out_dir: Path) -> list[str]:
    """latency_vs_throughput.png and batch_size_over_time.png (matplotlib, Agg backend)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_c = _get(figures, "noop", "by_concurrency") or {}
    for key, label, marker in (("reference", "bare aiohttp", "o"), ("frontend", "no-op via frontend", "s")):
        ordered = sorted(by_c.items(), key=lambda item: int(item[0]))
        points = [(m[key]["goodput_qps"], m[key]["p50_ms"], m[key]["p99_ms"], c)
                  for c, m in ordered if key in m]
        if points:
            ax.plot([p[0] for p in points], [p[2] for p in points], marker=marker, label=f"{label} p99")
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, linestyle="--",
                    label=f"{label} p50")
            for q, _, p99, c in points:
                ax.annotate(f"c={c}", (q, p99), fontsize=7)
    for label, v in (_get(figures, "batching", "variants") or {}).items():
        ax.scatter([v["goodput_qps"]], [v["p99_ms"]], marker="x")
        ax.annotate(f"batch {label}", (v["goodput_qps"], v["p99_ms"]), fontsize=7)
    ax.set_xlabel("throughput (real answers per second)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title("Latency against throughput")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "latency_vs_throughput.png", dpi=110)
    plt.close(fig)
    written.append("latency_vs_throughput.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, v in (_get(figures, "batching", "variants") or {}).items():
        series = v.get("batch_size_over_time") or []
        if series:
            ax.plot([p[0] for p in series], [p[1] for p in series], label=label)
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("mean batch size per sample")
    ax.set_title("Batch size over time, batch-friendly model")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "batch_size_over_time.png", dpi=110)
    plt.close(fig)
    written.append("batch_size_over_time.png")
    return written
