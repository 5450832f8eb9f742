"""Where a lone query's time goes: per-stage timing of a concurrency-1 run.

Run: ``python -m benchmarks.stages [--seconds S] [--model noop]``. Starts a benchmark cluster with
``CLIPPER_STAGE_TRACE`` set (see ``clipper_core.rpc.stage_trace``), so the query frontend and the
model container each write a timestamp at every stage of a query; drives it with wrk at
concurrency 1; merges both processes' marks by time and prints, per step between two consecutive
stages, the median and mean microseconds over every query whose stages came in the usual order.
The last step (``response_written -> http_data``) is the client's share: the reply's trip to wrk,
wrk's own work and the next request's trip back. The bare reference server is measured at
concurrency 1 in the same run for comparison.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import loadgen
from benchmarks.cluster import Cluster
from benchmarks.models import MODELS
from benchmarks.scenarios import ReferenceServer

FIRST_STAGE = "http_data"
LAST_STAGE = "response_written"


def read_marks(prefix: Path) -> list[tuple[int, str]]:
    """Every process's ``<stage> <ns>`` lines under ``prefix.*``, sorted by time."""
    marks: list[tuple[int, str]] = []
    for path in prefix.parent.glob(prefix.name + ".*"):
        for line in path.read_text(encoding="ascii").splitlines():
            stage, _, ns = line.partition(" ")
            marks.append((int(ns), stage))
    marks.sort()
    return marks


def per_query(marks: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Cut the merged marks at the first stage following a last stage (a request's body may
    arrive in a second ``http_data``); the last slice (cut short) is dropped."""
    slices: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    answered = False
    for mark in marks:
        if mark[1] == FIRST_STAGE and answered:
            slices.append(current)
            current = []
            answered = False
        answered = answered or mark[1] == LAST_STAGE
        current.append(mark)
    # Each slice ends with the next query's first mark, so the client's share is counted too.
    return [[*s, nxt[0]] for s, nxt in itertools.pairwise(slices)]


def breakdown(slices: list[list[tuple[int, str]]]) -> tuple[list[tuple[str, float, float]], int, int]:
    """(step, median us, mean us) for the most common stage order, its query count, all queries."""
    orders = collections.Counter(tuple(stage for _, stage in s) for s in slices)
    if not orders:
        return [], 0, 0
    usual, count = orders.most_common(1)[0]
    steps: dict[int, list[float]] = collections.defaultdict(list)
    for s in slices:
        if tuple(stage for _, stage in s) != usual:
            continue
        for index in range(len(s) - 1):
            steps[index].append((s[index + 1][0] - s[index][0]) / 1000)
    rows = [
        (f"{usual[i]} -> {usual[i + 1]}", statistics.median(v), statistics.fmean(v))
        for i, v in sorted(steps.items())
    ]
    return rows, count, len(slices)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--model", default="noop", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="clipper-stages-"))
    prefix = work / "marks"
    reference = ReferenceServer()
    try:
        os.environ["CLIPPER_STAGE_TRACE"] = str(prefix)  # inherited by the cluster's processes
        try:
            with Cluster(work / "cluster") as cluster:
                cluster.deploy("app", "model", args.model, slo_micros=100_000, batch_size=-1)
                loadgen.run_closed_loop(cluster.predict_url("app"), 1, 1)  # warm-up
                for path in work.glob("marks.*"):
                    path.unlink()  # the processes append from here on; earlier marks are gone
                frontend = loadgen.run_closed_loop(cluster.predict_url("app"), 1, args.seconds)
        finally:
            del os.environ["CLIPPER_STAGE_TRACE"]
        bare = loadgen.run_closed_loop(reference.url(), 1, args.seconds)
    finally:
        reference.close()
    rows, usual, total = breakdown(per_query(read_marks(prefix)))
    print(f"load average {os.getloadavg()[0]:.2f}; {usual} of {total} queries in the usual stage order")
    print(f"frontend c=1: {frontend.qps:.0f} qps, p50 {frontend.p50_ms * 1000:.0f} us "
          f"(tracing on); bare server c=1: {bare.qps:.0f} qps, p50 {bare.p50_ms * 1000:.0f} us")
    print(f"{'step':44} {'median us':>10} {'mean us':>9}")
    for step, median, mean in rows:
        print(f"{step:44} {median:>10.1f} {mean:>9.1f}")
    print(f"{'sum':44} {sum(r[1] for r in rows):>10.1f} {sum(r[2] for r in rows):>9.1f}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
