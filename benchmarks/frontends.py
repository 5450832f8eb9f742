"""One query frontend against two on the same machine (issue 16.3): ``python -m benchmarks.frontends``.

Two clusters run side by side, one with a single query frontend and one with two sharing the
REST port (``--reuse_port``; the layout ``LocalContainerManager(num_frontend_replicas=2)``
starts), each frontend with its own no-op replica. wrk drives each, and the bare reference
server, in interleaved rounds (reference, one frontend, two frontends, ...) at each
concurrency; medians are compared. Besides qps and latency it records the CPU each serving
process spent per request, the whole machine's busy CPU per request (wrk included) and how
busy the machine was, and each frontend's share of the requests (from its own metrics, read
on its instance port).

Writes ``benchmarks/results/frontends.json`` (``--out`` for another directory); ``--smoke``
runs seconds-long rounds and writes to a temporary directory. ``make bench`` runs the same
scenario as ``frontends`` in ``latest.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

from benchmarks import loadgen, report
from benchmarks.cluster import Cluster
from benchmarks.loadgen import LoadResult
from benchmarks.scenarios import BenchConfig, ReferenceServer, interleaved, ratio, summary, with_cpu

logger = logging.getLogger(__name__)

APP = "noop"
CONCURRENCIES_FULL = (1, 32, 128)
ROUNDS_FULL = 5


def _app_queries(cluster: Cluster, frontend: int) -> int:
    """Queries of the app that query frontend ``frontend`` alone has answered (its own /metrics)."""
    url = cluster.instance_url(APP, frontend).rsplit("/", 2)[0] + "/metrics"
    body = requests.get(url, headers={"Accept": "application/json"}, timeout=5)
    name = f"app:{APP}:num_predictions"
    report_json = body.json() if body.text.strip() else {}
    counts = [e[name]["count"] for e in report_json.get("counters", []) if name in e]
    return int(counts[0]) if counts else 0


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
                 + getattr(times, "steal", 0.0))


def measured_with_machine(run: Callable[[], LoadResult], cluster: Cluster | None) -> Callable[[], LoadResult]:
    """Add the machine's busy CPU per request and cores busy, the serving processes' CPU summed
    (``cpu_us_per_request_serving``), and each frontend's share of the requests."""

    def measured() -> LoadResult:
        frontends = cluster.frontends if cluster is not None else 0
        before = [_app_queries(cluster, i) for i in range(frontends)] if cluster else []
        busy_before, started = _machine_busy_s(), time.monotonic()
        result = run()
        busy, wall = _machine_busy_s() - busy_before, time.monotonic() - started
        extra = result.extra
        per_request = busy / result.requests if result.requests else 0.0
        extra["cpu_us_per_request_machine"] = round(per_request * 1e6, 1)
        extra["cores_busy"] = round(busy / wall, 2)
        extra["cpu_us_per_request_serving"] = round(
            sum(v for k, v in extra.items() if k.startswith(("cpu_us_per_request_frontend",
                                                             "cpu_us_per_request_container",
                                                             "cpu_us_per_request_server"))), 1)
        if cluster is not None:
            after = [_app_queries(cluster, i) for i in range(frontends)]
            taken = [b - a for a, b in zip(before, after, strict=True)]
            extra["share_per_frontend"] = [round(t / sum(taken), 3) if sum(taken) else 0.0 for t in taken]
        return result

    return measured


def measured_closed_loop(url: str, concurrency: int, duration_s: float, pids: dict[str, int],
                         cluster: Cluster | None = None) -> Callable[[], LoadResult]:
    """One wrk closed-loop run against ``url`` with the CPU of ``pids`` and of the machine per
    request (and, given ``cluster``, each of its frontends' share)."""
    return measured_with_machine(with_cpu(
        lambda: loadgen.run_closed_loop(url, concurrency, duration_s), pids), cluster)


def serving_pids(cluster: Cluster) -> dict[str, int]:
    pids = {f"frontend_{i}": cluster.processes[name].pid for i, name in enumerate(cluster.query_names())}
    for i, replica in enumerate(cluster.replicas):
        pids[f"container_{i}"] = replica.process.pid
    return pids


def summary_with_machine(results: list[LoadResult]) -> dict[str, Any]:
    figures = summary(results)
    for key in ("cpu_us_per_request_machine", "cores_busy", "cpu_us_per_request_serving"):
        figures[key] = round(statistics.median(float(r.extra[key]) for r in results), 2)
    if "share_per_frontend" in results[0].extra:
        shares = [r.extra["share_per_frontend"] for r in results]
        figures["share_per_frontend"] = [round(statistics.median(s[i] for s in shares), 3)
                                         for i in range(len(shares[0]))]
    return figures


def scale_out(config: BenchConfig, reference: ReferenceServer, work_dir: Path) -> dict[str, Any]:
    """1 against 2 query frontends (each with its own no-op replica) and the reference server."""
    concurrencies = config.concurrencies if config.smoke else CONCURRENCIES_FULL
    rounds = config.rounds if config.smoke else ROUNDS_FULL
    d = config.duration_s
    figures: dict[str, Any] = {"concurrencies": list(concurrencies), "rounds": rounds, "by_concurrency": {}}
    with Cluster(work_dir / "one-frontend") as one, Cluster(work_dir / "two-frontends", frontends=2) as two:
        for cluster in (one, two):
            cluster.deploy(APP, APP, "noop", slo_micros=config.noop_slo_us, batch_size=-1)
        for concurrency in concurrencies:
            runs = {
                "reference": measured_closed_loop(reference.url(), concurrency, d,
                                                  {"server": reference.process.pid}),
                "one_frontend": measured_closed_loop(one.predict_url(APP), concurrency, d,
                                                     serving_pids(one), one),
                "two_frontends": measured_closed_loop(two.predict_url(APP), concurrency, d,
                                                      serving_pids(two), two),
            }
            results = interleaved(dataclasses.replace(config, rounds=rounds), runs)
            measured: dict[str, Any] = {name: summary_with_machine(r) for name, r in results.items()}
            measured["two_over_one"] = ratio(measured["two_frontends"]["goodput_qps"],
                                             measured["one_frontend"]["goodput_qps"])
            for name in ("one_frontend", "two_frontends"):
                measured[f"{name}_ratio_to_reference"] = ratio(measured[name]["goodput_qps"],
                                                               measured["reference"]["goodput_qps"])
            figures["by_concurrency"][str(concurrency)] = measured
    # What one core buys: requests per CPU-second of the frontend alone, and of frontend plus
    # model container (both need a core's share per request), at the highest concurrency.
    top = figures["by_concurrency"][str(concurrencies[-1])]["one_frontend"]
    frontend_us = float(top.get("cpu_us_per_request_frontend_0", 0.0))
    serving_us = float(top.get("cpu_us_per_request_serving", 0.0))
    figures["per_core"] = {
        "frontend_cpu_us_per_request": frontend_us,
        "frontend_and_container_cpu_us_per_request": serving_us,
        "requests_per_core_second_frontend_only": round(1e6 / frontend_us) if frontend_us else None,
        "requests_per_core_second_frontend_and_container": round(1e6 / serving_us) if serving_us else None,
    }
    return figures


def table_rows(figures: dict[str, Any], names: tuple[str, ...], width: int,
               summary_line: Callable[[str, dict[str, Any]], str], *, shares: bool) -> list[str]:
    """The console table: a header, then per concurrency one row per named run and
    ``summary_line(concurrency, measured)``."""
    share_head = f" {'share':>14}" if shares else ""
    lines = [f"{'run':{width}} {'qps':>8} {'p50 ms':>7} {'p99 ms':>7} {'serving us/req':>14} "
             f"{'machine us/req':>14} {'cores busy':>10}{share_head}"]
    for concurrency, m in figures["by_concurrency"].items():
        for name in names:
            r = m[name]
            share = f" {r.get('share_per_frontend', '')!s:>14}" if shares else ""
            lines.append(
                f"{name + ' c=' + concurrency:{width}} {r['goodput_qps']:>8.0f} {r['p50_ms']:>7.2f} "
                f"{r['p99_ms']:>7.2f} {r['cpu_us_per_request_serving']:>14} "
                f"{r['cpu_us_per_request_machine']:>14} {r['cores_busy']:>10}{share}")
        lines.append(summary_line(concurrency, m))
    return lines


def table(figures: dict[str, Any]) -> str:
    lines = table_rows(figures, ("reference", "one_frontend", "two_frontends"), 28,
                       lambda c, m: f"  two/one frontends c={c}: {m['two_over_one']}", shares=True)
    lines.append(f"per core: {figures['per_core']}")
    return "\n".join(lines)


def markdown_table(figures: dict[str, Any]) -> str:
    """The README's table of a run: per concurrency, reference / one / two frontends."""
    lines = ["| concurrency | run | req/s (rounds min-max) | p50 ms | p99 ms | serving CPU us/req "
             "| machine CPU us/req | share per frontend |",
             "|---|---|---|---|---|---|---|---|"]
    labels = {"reference": "bare aiohttp", "one_frontend": "1 frontend", "two_frontends": "2 frontends"}
    for concurrency, m in figures["by_concurrency"].items():
        for name, label in labels.items():
            r = m[name]
            rounds = [x["goodput_qps"] for x in r["rounds"]]
            share = " / ".join(f"{x:.2f}" for x in r.get("share_per_frontend", [])) or "-"
            spread = f"({min(rounds):,.0f}-{max(rounds):,.0f})"
            lines.append(
                f"| {concurrency} | {label} | {r['goodput_qps']:,.0f} {spread} "
                f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us_per_request_serving']:.0f} "
                f"| {r['cpu_us_per_request_machine']:.0f} | {share} |")
        lines.append(f"| {concurrency} | **2 / 1 frontends** | **{m['two_over_one']}** | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="seconds-long rounds, small loads")
    parser.add_argument("--out", type=Path, default=None, help="directory for frontends.json")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="print the README table of an earlier run's frontends.json and exit")
    args = parser.parse_args(argv)
    if args.markdown is not None:
        print(markdown_table(json.loads(args.markdown.read_text(encoding="utf-8"))["frontends"]))
        return 0
    return measure_and_write("frontends", scale_out, table, smoke=args.smoke, out=args.out)


def measure_and_write(
    name: str,
    measure: Callable[[BenchConfig, ReferenceServer, Path], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    *,
    smoke: bool,
    out: Path | None,
) -> int:
    """Run ``measure`` against a fresh reference server, write ``<out>/<name>.json`` (the
    figures under ``name``, with the machine, duration and load around the run) and print
    ``render(figures)``. Without ``out``: ``results/``, or a temporary directory for a smoke run."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = BenchConfig.smoke_config() if smoke else BenchConfig.full()
    out_dir = out or (
        Path(tempfile.mkdtemp(prefix=f"clipper-bench-{name}-")) if smoke else report.RESULTS_DIR)
    work_dir = Path(tempfile.mkdtemp(prefix=f"clipper-bench-{name}-work-"))
    reference = ReferenceServer()
    started = time.monotonic()
    load_before = [round(x, 2) for x in psutil.getloadavg()]
    try:
        figures = measure(config, reference, work_dir)
    finally:
        reference.close()
    payload = {
        "kind": "smoke" if config.smoke else "full",
        "machine": report.machine(),
        "duration_s": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, [round(x, 2) for x in psutil.getloadavg()]],
        "load_generator": "wrk (Debian package), 1 thread" if loadgen.wrk_available()
        else "Python closed-loop aiohttp client (wrk not installed)",
        name: figures,
    }
    report.write_json(out_dir / f"{name}.json", payload)
    print(render(figures))
    print(f"[bench] wrote {out_dir / f'{name}.json'}", flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
