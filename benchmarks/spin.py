"""Polling before sleeping on the RPC hop, off against on: ``python -m benchmarks.spin``.

Two clusters run side by side, identical but for ``CLIPPER_RPC_SPIN_US`` (read by the query
frontend as ``--rpc_spin_us`` and by the model container): one with 0 (both ends sleep as soon
as they wait), one with ``SUGGESTED_SPIN_US`` (``clipper_core.rpc.spin``; ``--spin-us`` for
another). An idle cluster does not poll (its windows shrink to 0), so the one not being driven
costs nothing. wrk drives the bare
reference server and each cluster's no-op app in interleaved rounds at each concurrency, so
the host's noise falls on all three alike; medians are compared, with the CPU each serving
process spent per request and the whole machine's busy CPU per request.

Writes ``benchmarks/results/spin.json`` (``--out`` for another directory); ``--smoke`` runs
seconds-long rounds and writes to a temporary directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from benchmarks.cluster import Cluster
from benchmarks.frontends import (
    measure_and_write,
    measured_closed_loop,
    serving_pids,
    summary_with_machine,
    table_rows,
)
from benchmarks.scenarios import BenchConfig, ReferenceServer, interleaved, ratio
from clipper_core.rpc.spin import SUGGESTED_SPIN_US

APP = "noop"
CONCURRENCIES_FULL = (1, 32)
ROUNDS_FULL = 6
SPIN_ENV = "CLIPPER_RPC_SPIN_US"


def compare(config: BenchConfig, reference: ReferenceServer, work_dir: Path,
            spin_us: int = SUGGESTED_SPIN_US) -> dict[str, Any]:
    concurrencies = config.concurrencies if config.smoke else CONCURRENCIES_FULL
    rounds = config.rounds if config.smoke else ROUNDS_FULL
    d = config.duration_s
    figures: dict[str, Any] = {"spin_us": spin_us, "concurrencies": list(concurrencies),
                               "rounds": rounds, "by_concurrency": {}}
    with Cluster(work_dir / "sleeping", env={SPIN_ENV: "0"}) as sleeping, \
            Cluster(work_dir / "polling", env={SPIN_ENV: str(spin_us)}) as polling:
        for cluster in (sleeping, polling):
            cluster.deploy(APP, APP, "noop", slo_micros=config.noop_slo_us, batch_size=-1)
        for concurrency in concurrencies:
            runs = {
                "reference": measured_closed_loop(reference.url(), concurrency, d,
                                                  {"server": reference.process.pid}),
                "spin_off": measured_closed_loop(sleeping.predict_url(APP), concurrency, d,
                                                 serving_pids(sleeping)),
                "spin_on": measured_closed_loop(polling.predict_url(APP), concurrency, d,
                                                serving_pids(polling)),
            }
            results = interleaved(dataclasses.replace(config, rounds=rounds), runs)
            measured: dict[str, Any] = {name: summary_with_machine(r) for name, r in results.items()}
            for name in ("spin_off", "spin_on"):
                measured[f"{name}_ratio_to_reference"] = ratio(measured[name]["goodput_qps"],
                                                               measured["reference"]["goodput_qps"])
            # Per round too: each round's three runs are minutes apart at most, so the host's
            # load is closest within a round.
            measured["on_over_off_per_round"] = [
                ratio(on.goodput_qps, off.goodput_qps)
                for on, off in zip(results["spin_on"], results["spin_off"], strict=True)]
            measured["on_over_off"] = ratio(measured["spin_on"]["goodput_qps"],
                                            measured["spin_off"]["goodput_qps"])
            figures["by_concurrency"][str(concurrency)] = measured
    return figures


def table(figures: dict[str, Any]) -> str:
    def summary_line(concurrency: str, m: dict[str, Any]) -> str:
        return (f"  on/off c={concurrency}: {m['on_over_off']} (per round {m['on_over_off_per_round']});"
                f" to reference off {m['spin_off_ratio_to_reference']}, on {m['spin_on_ratio_to_reference']}")

    runs = ("reference", "spin_off", "spin_on")
    return "\n".join(table_rows(figures, runs, 20, summary_line, shares=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="seconds-long rounds, small loads")
    parser.add_argument("--out", type=Path, default=None, help="directory for spin.json")
    parser.add_argument("--spin-us", type=int, default=SUGGESTED_SPIN_US,
                        help="the polling cluster's bound in microseconds")
    args = parser.parse_args(argv)
    spin_us = args.spin_us
    return measure_and_write(
        "spin", lambda config, reference, work_dir: compare(config, reference, work_dir, spin_us), table,
        smoke=args.smoke, out=args.out)

if __name__ == "__main__":
    sys.exit(main())
