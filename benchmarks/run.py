"""Entry point of ``make bench`` and ``make bench-smoke``.

``python -m benchmarks.run`` runs every scenario of DESIGN.md section 5 (a few minutes), prints a
table, writes ``benchmarks/results/latest.json`` and two PNG plots next to it.
``python -m benchmarks.run --smoke`` runs each scenario for about a second with small loads, checks
nothing against the targets and writes to a temporary directory unless ``--out`` is given; it exists
so ``make test`` proves the harness still works.
``--only noop,batching`` runs only the named scenarios (``SCENARIOS``; ``batching_sleep``, the
batch-friendly model with a sleeping per-call cost, runs only when named) and writes
``partial.json`` without target verdicts; ``--concurrencies 1,32`` narrows the no-op scenario.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import loadgen, report, scenarios
from benchmarks.cluster import Cluster, rss_bytes
from benchmarks.scenarios import BenchConfig, ReferenceServer

logger = logging.getLogger("benchmarks")

SCENARIOS = ("loadgen_check", "noop", "batching", "batching_sleep", "overload", "after_load", "memory")
DEFAULT_SCENARIOS = tuple(name for name in SCENARIOS if name != "batching_sleep")


def _scenario(figures: dict[str, Any], errors: dict[str, str], name: str, run: Callable[[], Any],
              only: tuple[str, ...] = DEFAULT_SCENARIOS) -> None:
    if name not in only:
        return
    started = time.monotonic()
    print(f"[bench] {name} ...", flush=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        figures[name] = run()
        # Other work on the machine skews absolute figures; the 1-minute load shows how much.
        figures[name]["load_average_before_after"] = [load_before, [round(x, 2) for x in os.getloadavg()]]
    except Exception as error:  # one broken scenario must not hide the others' figures
        logger.debug("scenario %s failed", name, exc_info=True)
        errors[name] = f"{type(error).__name__}: {error}"
        print(f"[bench] {name} FAILED: {errors[name]}\n{traceback.format_exc()}", flush=True)
    print(f"[bench] {name} took {time.monotonic() - started:.1f}s", flush=True)


def run(
    config: BenchConfig, out_dir: Path, keep_logs: bool, only: tuple[str, ...] = DEFAULT_SCENARIOS
) -> int:
    partial = only != DEFAULT_SCENARIOS
    work_dir = Path(tempfile.mkdtemp(prefix="clipper-bench-"))
    figures: dict[str, Any] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()
    reference = ReferenceServer()
    try:
        _scenario(figures, errors, "loadgen_check", lambda: scenarios.loadgen_check(config, reference), only)
        try:
            if set(only) & {"noop", "batching", "batching_sleep", "overload", "after_load"}:
                with Cluster(work_dir / "main") as cluster:
                    _scenario(figures, errors, "noop",
                              lambda: scenarios.noop_and_cache(config, cluster, reference), only)
                    _scenario(figures, errors, "batching", lambda: scenarios.batching(config, cluster), only)
                    _scenario(figures, errors, "batching_sleep",
                              lambda: scenarios.batching(config, cluster, "batch_sleep"), only)
                    _scenario(figures, errors, "overload", lambda: scenarios.overload(config, cluster), only)
                    # Not a target: what the load scenarios (cache filled with unique inputs) leave.
                    _scenario(figures, errors, "after_load", lambda: {
                        "query_frontend_rss_mb": round(rss_bytes(cluster.query_pid) / scenarios.MIB, 1),
                    }, only)
        except Exception as error:
            errors["cluster"] = f"{type(error).__name__}: {error}"
            print(f"[bench] cluster FAILED: {errors['cluster']}", flush=True)
        _scenario(figures, errors, "memory", lambda: scenarios.memory(config, work_dir), only)
    finally:
        reference.close()

    targets = None if config.smoke or partial else report.evaluate_targets(figures)
    payload: dict[str, Any] = {
        "kind": "smoke" if config.smoke else "partial" if partial else "full",
        "machine": report.machine(),
        "config": {k: v for k, v in vars(config).items()},
        "duration_s": round(time.monotonic() - started, 1),
        "load_generator": (
            "wrk (Debian package), 1 thread, Lua script benchmarks/wrk_predict.lua"
            if loadgen.wrk_available() else "Python closed-loop aiohttp client (wrk not installed)"
        ) + "; Python open-loop aiohttp client for the overload scenario",
        "figures": figures,
        "errors": errors,
    }
    if targets is not None:
        payload["targets"] = [t.to_dict() for t in targets]
        payload["targets_passed"] = sum(t.passed for t in targets)
        payload["targets_total"] = len(targets)
    name = "smoke.json" if config.smoke else "partial.json" if partial else "latest.json"
    report.write_json(out_dir / name, payload)
    plots = report.plot(figures, out_dir)
    print(report.table(figures, targets))
    print(f"[bench] wrote {out_dir} ({', '.join(plots)})", flush=True)
    if errors:
        print(f"[bench] scenario errors: {errors}", flush=True)
    if keep_logs or errors:
        print(f"[bench] process logs kept in {work_dir}", flush=True)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="seconds-long run, small loads, no targets")
    parser.add_argument("--out", type=Path, default=None, help="directory for the JSON report and plots")
    parser.add_argument("--keep-logs", action="store_true", help="keep the cluster's log directory")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated scenarios to run, of {', '.join(SCENARIOS)}")
    parser.add_argument("--concurrencies", default=None, help="no-op scenario concurrencies, e.g. 1,32")
    args = parser.parse_args(argv)
    only = DEFAULT_SCENARIOS
    if args.only:
        only = tuple(name.strip() for name in args.only.split(",") if name.strip())
        unknown = sorted(set(only) - set(SCENARIOS))
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = BenchConfig.smoke_config() if args.smoke else BenchConfig.full()
    if args.concurrencies:
        config = dataclasses.replace(
            config, concurrencies=tuple(int(c) for c in args.concurrencies.split(",")))
    out_dir = args.out
    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="clipper-bench-smoke-")) if args.smoke else report.RESULTS_DIR
    return run(config, out_dir, args.keep_logs, only)


if __name__ == "__main__":
    sys.exit(main())
