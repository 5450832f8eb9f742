"""Profile the query frontend under load with py-spy (sampling, no code change in the frontend).

Run: ``python -m benchmarks.profile noop`` (or ``cache``, ``batch``). Starts a benchmark cluster,
drives it with wrk at the given concurrency, records the frontend with ``py-spy record --format raw``
and prints the functions that dominate (self time and inclusive time). Writes the collapsed stacks
and a flame graph SVG to ``benchmarks/results/profile_<scenario>.{txt,svg}``.
Needs ``pip install py-spy`` (not a project dependency; root or ptrace permission).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks import loadgen
from benchmarks.cluster import Cluster
from benchmarks.report import RESULTS_DIR


def top_functions(collapsed: str, limit: int = 25) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(self share, inclusive share) per frame from py-spy's collapsed ``a;b;c count`` lines."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return [], []

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(n / total, 4)) for frame, n in counter.most_common(limit)]

    return share(self_counts), share(inclusive)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=("noop", "cache", "batch"))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    raw_path = args.out / f"profile_{args.scenario}.txt"
    svg_path = args.out / f"profile_{args.scenario}.svg"
    kind = "batch" if args.scenario == "batch" else "noop"
    with Cluster(Path(tempfile.mkdtemp(prefix="clipper-profile-"))) as cluster:
        cluster.deploy("app", "model", kind, slo_micros=100_000, batch_size=-1)
        url = cluster.predict_url("app")
        same_input = args.scenario == "cache"
        result: list[loadgen.LoadResult] = []
        load = threading.Thread(target=lambda: result.append(
            loadgen.run_closed_loop(url, args.concurrency, args.seconds + 4, same_input=same_input)))
        load.start()
        for path, fmt in ((raw_path, "raw"), (svg_path, "flamegraph")):
            subprocess.run([py_spy, "record", "--pid", str(cluster.query_pid), "--duration",
                            str(args.seconds // 2), "--rate", "200", "--format", fmt, "--output", str(path),
                            "--nonblocking"], check=True, capture_output=True)
        load.join()
    self_share, inclusive_share = top_functions(raw_path.read_text(encoding="utf-8"))
    if result:
        print(f"load: {result[0].qps:.0f} qps, p99 {result[0].p99_ms:.2f} ms (while profiled)")
    print("self time (share of samples):")
    for frame, value in self_share:
        print(f"  {value:6.1%}  {frame}")
    print("inclusive time:")
    for frame, value in inclusive_share:
        print(f"  {value:6.1%}  {frame}")
    print(f"collapsed stacks: {raw_path}; flame graph: {svg_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
